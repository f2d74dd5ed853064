// Package gobsession is scs's GobCodec, in a fraction of the time.
//
// scs.GobCodec decodes each session with a new gob.Decoder, which first
// reads the type definitions at the head of the session's bytes and compiles
// a decoder for them: nine tenths of the work, and the same for every
// session, since every session of a process describes the same types. Codec
// keeps decoders that have read a given set of type definitions, and hands
// them only the rest of the bytes of a session that starts with the same
// definitions, byte for byte. It encodes the same way round: an encoder
// that has sent the definitions once writes only the session, after a copy
// of the definitions it sent.
//
// What it decodes is what scs.GobCodec decodes, and what it encodes is what
// scs.GobCodec encodes, byte for byte: both read each other's sessions, and
// a site's own SessionManager reads what a Codec wrote. Anything out of the
// ordinary goes to scs.GobCodec as it is: bytes that do not parse as gob
// messages, a decoding error (so that the error is scs.GobCodec's), a
// session holding values of types that gob defines inside the session, and
// more distinct type-definition sets than a process of one site has.
package gobsession

import (
	"bytes"
	"encoding/gob"
	"io"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Codec is an scs.Codec that encodes and decodes as scs.GobCodec does. Its
// zero value is ready to use, and it is safe for concurrent use.
type Codec struct {
	mu    sync.RWMutex
	pools map[string]*sync.Pool // of *decoder, by the type definitions they have read

	encoders sync.Pool // of *encoder
}

// maxDefs bounds how many sets of type definitions a Codec keeps decoders
// for. A site's sessions have one or a few: the scs session itself, and the
// named types the site keeps in sessions.
const maxDefs = 16

// Encode writes what scs.GobCodec writes. For a session whose values are all
// of types that gob knows without a definition (see plain), it uses an
// encoder that has sent the session's type definitions before, and puts the
// definitions it sent then in front of the session: the same bytes, without
// describing the types again. The bytes have no spare capacity.
func (c *Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	if !plain(values) {
		return exact(scs.GobCodec{}.Encode(deadline, values))
	}
	aux := &struct {
		Deadline time.Time
		Values   map[string]any
	}{deadline, values}
	e, _ := c.encoders.Get().(*encoder)
	if e == nil {
		e = &encoder{}
		e.enc = gob.NewEncoder(&e.buf)
		if err := e.enc.Encode(&aux); err != nil {
			return exact(scs.GobCodec{}.Encode(deadline, values))
		}
		b, _ := exact(e.buf.Bytes(), nil)
		defs, ok := typeDefinitions(b)
		if !ok {
			return b, nil // not kept: it cannot tell its definitions
		}
		e.defs, _ = exact(defs, nil) // not the caller's bytes, which it may change
		c.encoders.Put(e)
		return b, nil
	}
	e.buf.Reset()
	if err := e.enc.Encode(&aux); err != nil {
		return exact(scs.GobCodec{}.Encode(deadline, values)) // and e is dropped
	}
	b := make([]byte, 0, len(e.defs)+e.buf.Len())
	b = append(append(b, e.defs...), e.buf.Bytes()...)
	c.encoders.Put(e)
	return b, nil
}

// exact returns a copy of b without spare capacity, which a store such as
// scs's memory store would keep as long as the session.
func exact(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out, nil
}

// encoder is a gob.Encoder that has sent the type definitions defs of a
// session of plain values, and the buffer it writes to.
type encoder struct {
	buf  bytes.Buffer
	enc  *gob.Encoder
	defs []byte
}

// Decode decodes what scs.GobCodec encoded, with a decoder that has read
// the same type definitions before when there is one.
func (c *Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	defs, ok := typeDefinitions(b)
	if !ok || !definesNothing(b[len(defs):]) {
		return scs.GobCodec{}.Decode(b)
	}
	c.mu.RLock()
	pool := c.pools[string(defs)]
	c.mu.RUnlock()
	var d *decoder
	if pool != nil {
		d, _ = pool.Get().(*decoder)
	}
	if d == nil {
		d = newDecoder()
		d.r.b = b // the definitions, then the session: it learns them
	} else {
		d.r.b = b[len(defs):]
	}
	var aux struct {
		Deadline time.Time
		Values   map[string]any
	}
	if err := d.dec.Decode(&aux); err != nil {
		// The decoder may be left in any state; scs.GobCodec says what
		// is wrong, from a decoder of its own.
		return scs.GobCodec{}.Decode(b)
	}
	d.r.b = nil
	if plain(aux.Values) {
		// A value of another type may hold interface values, whose
		// types may be defined inside the session: a decoder that read
		// such a session may know types the next session does not
		// define, and is not used again.
		if pool == nil {
			pool = c.pool(defs)
		}
		if pool != nil {
			pool.Put(d)
		}
	}
	return aux.Deadline, aux.Values, nil
}

// pool returns the decoders that have read defs, made now if need be, or
// nil when the Codec keeps decoders for maxDefs other sets already. Only a
// session that decoded makes a set.
func (c *Codec) pool(defs []byte) *sync.Pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pools[string(defs)]; p != nil {
		return p
	}
	if len(c.pools) >= maxDefs {
		return nil
	}
	if c.pools == nil {
		c.pools = make(map[string]*sync.Pool)
	}
	p := new(sync.Pool)
	c.pools[string(defs)] = p
	return p
}

// plain reports whether every value is of a type that holds no interface
// values, so that decoding it defined no types inside the session.
func plain(values map[string]any) bool {
	for _, v := range values {
		switch v.(type) {
		case string, []byte, bool, time.Time,
			int, int8, int16, int32, int64,
			uint, uint8, uint16, uint32, uint64,
			float32, float64, complex64, complex128:
		default:
			return false
		}
	}
	return true
}

// decoder is a gob.Decoder and the reader it reads, which is given the
// bytes of one session at a time.
type decoder struct {
	r   reader
	dec *gob.Decoder
}

func newDecoder() *decoder {
	d := new(decoder)
	d.dec = gob.NewDecoder(&d.r)
	return d
}

// reader reads b. It is an io.ByteReader, so that the gob.Decoder reads it
// without a buffer of its own and takes from it no more than a message.
type reader struct{ b []byte }

func (r *reader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *reader) ReadByte() (byte, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

// typeDefinitions returns the gob messages that define types at the head of
// b, up to the first message that holds a value. ok is false when b does not
// parse as such messages followed by a value.
//
// A gob stream is a sequence of messages, each an unsigned byte count and
// that many bytes, which start with a signed type id: a negative id defines
// the type -id, a positive one is a value of that type.
func typeDefinitions(b []byte) (defs []byte, ok bool) {
	for i := 0; i < len(b); {
		n, w := gobUint(b[i:])
		if w == 0 || n == 0 || n > uint64(len(b)-i-w) {
			return nil, false
		}
		id, w2 := gobUint(b[i+w:])
		if w2 == 0 {
			return nil, false
		}
		if id&1 == 0 { // a non-negative id: a value
			return b[:i], true
		}
		i += w + int(n)
	}
	return nil, false
}

// definesNothing reports whether the gob message at the head of b, the
// value of a session (struct{Deadline time.Time; Values
// map[string]any}), defines no types inside it: each value in Values
// names its type by a non-negative id, without the definitions gob puts
// between the name and the id of an interface value's type. A decoder
// that reads only such messages, of plain values (see plain), learns no
// types from them. It is false for anything it does not follow.
//
// Gob writes a struct as pairs of a field-number delta and the field,
// ended by a delta of 0; the Deadline (a GobEncoder) as a byte count and
// bytes; a map as a count and keys and values; a string as a byte count
// and bytes; and an interface value as the length and name of its type,
// then (for a non-nil one) the type's id, perhaps after definitions (each
// a negative id), then a byte count and the value.
func definesNothing(b []byte) bool {
	n, w := gobUint(b)
	if w == 0 || n > uint64(len(b)-w) {
		return false
	}
	m := &gobReader{b: b[w : w+int(n)]}
	if id, ok := m.int(); !ok || id < 0 {
		return false
	}
	for field := -1; ; {
		delta, ok := m.uint()
		switch {
		case !ok:
			return false
		case delta == 0:
			return len(m.b) == 0
		case delta > 2:
			return false
		}
		field += int(delta)
		switch field {
		case 0: // Deadline
			if !m.skipCounted() {
				return false
			}
		case 1: // Values
			count, ok := m.uint()
			if !ok || count > uint64(len(m.b)) {
				return false
			}
			for range count {
				if !m.skipCounted() { // the key
					return false
				}
				name, ok := m.uint()
				if !ok || name > uint64(len(m.b)) {
					return false
				}
				m.b = m.b[name:]
				if name == 0 {
					continue // a nil interface value
				}
				if id, ok := m.int(); !ok || id < 0 {
					return false
				}
				if !m.skipCounted() {
					return false
				}
			}
		default:
			return false
		}
	}
}

// gobReader reads the integers and counted bytes of a gob message.
type gobReader struct{ b []byte }

func (r *gobReader) uint() (uint64, bool) {
	x, w := gobUint(r.b)
	r.b = r.b[w:]
	return x, w > 0
}

// int reads a signed integer: gob sends it as an unsigned one whose low bit
// says whether to complement the rest.
func (r *gobReader) int() (int64, bool) {
	u, ok := r.uint()
	if u&1 != 0 {
		return ^int64(u >> 1), ok
	}
	return int64(u >> 1), ok
}

// skipCounted skips a byte count and that many bytes.
func (r *gobReader) skipCounted() bool {
	n, ok := r.uint()
	if !ok || n > uint64(len(r.b)) {
		return false
	}
	r.b = r.b[n:]
	return true
}

// gobUint reads an unsigned integer as gob encodes it: below 128, one byte;
// otherwise the negated count of the bytes that follow, then the value in
// them, big-endian. w is the number of bytes read, 0 when b does not start
// with one.
func gobUint(b []byte) (x uint64, w int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	n := -int(int8(b[0]))
	if n > 8 || len(b) < 1+n {
		return 0, 0
	}
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	return x, 1 + n
}
