// Package gobsession is scs's GobCodec, in a fraction of the time.
//
// scs.GobCodec decodes each session with a new gob.Decoder, which first
// reads the type definitions at the head of the session's bytes and compiles
// a decoder for them: nine tenths of the work, and the same for every
// session, since every session of a process describes the same types. Codec
// keeps decoders that have read the definitions this process writes, and
// hands them only the rest of a session that starts with the same
// definitions, byte for byte, and whose values are of types that need no
// definition of their own. It encodes the same way round: an encoder that
// has sent the definitions once writes only the session, after a copy of
// the definitions it sent.
//
// What it decodes is what scs.GobCodec decodes, and what it encodes is what
// scs.GobCodec encodes, byte for byte: both read each other's sessions, and
// a site's own SessionManager reads what a Codec wrote. Anything else goes
// to scs.GobCodec as it is: bytes that do not parse as such a session, a
// decoding error (so that the error is scs.GobCodec's), a session written
// by a process that numbered the types otherwise, and a session holding a
// value of a type that gob defines inside the session.
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
	decoders sync.Pool // of *decoder, which have read ownSession's definitions
	encoders sync.Pool // of *encoder
}

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
// the session's type definitions before when it may.
func (c *Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	own := ownSession()
	defs, ok := typeDefinitions(b)
	if !ok || !bytes.Equal(defs, own.defs) || !own.simple(b[len(defs):]) {
		return scs.GobCodec{}.Decode(b)
	}
	d, _ := c.decoders.Get().(*decoder)
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
	if plain(aux.Values) { // as simple promised; a decoder that read anything else is not used again
		c.decoders.Put(d)
	}
	return aux.Deadline, aux.Values, nil
}

// plain reports whether every value is of a basic type or time.Time: what
// Encode writes with a kept encoder, and what a kept decoder may have read.
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
	for r := (gobReader{b: b}); len(r.b) > 0; {
		start := len(b) - len(r.b)
		msg, ok := r.counted()
		if !ok || len(msg) == 0 {
			return nil, false
		}
		id, ok := (&gobReader{b: msg}).int()
		if !ok {
			return nil, false
		}
		if id >= 0 { // a value
			return b[:start], true
		}
	}
	return nil, false
}

// session is what this process writes at the head of every session: the
// type definitions of scs's session (the struct, time.Time and the map),
// and the id it gives time.Time. gob numbers types in the order a process
// first meets them, so another process may write other definitions.
type session struct {
	defs   []byte
	timeID int64
}

// ownSession returns the session shape of this process, from a session it
// encodes for the purpose. time.Time's id is read from its definition (a
// GobEncoder type named "Time"), which the Deadline brings: a time.Time in
// Values would need gob.Register, which the probe does not do.
var ownSession = sync.OnceValue(func() session {
	b, err := scs.GobCodec{}.Encode(time.Time{}, map[string]any{"s": ""})
	defs, ok := typeDefinitions(b)
	if err != nil || !ok {
		return session{} // defs nil: no session matches, all go to scs.GobCodec
	}
	own := session{defs: defs, timeID: -1}
	for r := (gobReader{b: defs}); len(r.b) > 0; {
		msg, _ := r.counted()
		m := gobReader{b: msg}
		id, _ := m.int()
		// gob's wireType: field 5, GobEncoderT; its CommonType's
		// field 1, the name.
		if bytes.HasPrefix(m.b, []byte("\x05\x01\x01\x04Time")) {
			own.timeID = -id
		}
	}
	return own
})

// Type ids that gob gives its basic types, the same in every process.
const (
	idBool, idInt, idUint, idFloat, idBytes, idString, idComplex = 1, 2, 3, 4, 5, 6, 7
)

// simple reports whether b starts with the value message of a session whose
// values are all of gob's basic types or time.Time, each exactly as gob
// writes it. A decoder that reads such a message learns no types from it:
// no value carries a definition, and no value hides anything behind its
// byte count, which gob reads past without looking at.
func (s session) simple(b []byte) bool {
	return elements(b, func(_ []byte, id int64, value []byte) bool {
		// A value of a type other than a struct is written as a 0
		// (the field delta of a singleton), then the value.
		if len(value) == 0 || value[0] != 0 {
			return false
		}
		r := &gobReader{b: value[1:]}
		switch id {
		case idBool, idInt, idUint, idFloat:
			_, ok := r.uint()
			return ok && len(r.b) == 0
		case idComplex:
			_, ok1 := r.uint()
			_, ok2 := r.uint()
			return ok1 && ok2 && len(r.b) == 0
		case idBytes, idString, s.timeID: // time.Time: the bytes of its GobEncode
			return r.skipCounted() && len(r.b) == 0
		}
		return false
	})
}

// elements walks the value message at the head of b, a session
// (struct{Deadline time.Time; Values map[string]any}), and calls visit with
// the type name, type id and counted bytes of each value that is not nil.
// It reports false when visit does, and when b is not such a message or a
// value's type is defined inside it.
//
// Gob writes a struct as pairs of a field-number delta and the field,
// ended by a delta of 0, leaving out zero fields; the Deadline (a
// GobEncoder) as a byte count and bytes; a map as a count and keys and
// values; a string as a byte count and bytes; and an interface value as
// the length and name of its type, then (for a non-nil one) perhaps
// definitions (each a negative id), the type's id, a byte count and the
// value.
func elements(b []byte, visit func(name []byte, id int64, value []byte) bool) bool {
	msg, ok := (&gobReader{b: b}).counted()
	if !ok {
		return false
	}
	m := &gobReader{b: msg}
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
				name, ok := m.counted()
				if !ok {
					return false
				}
				if len(name) == 0 {
					continue // a nil interface value
				}
				id, ok := m.int()
				if !ok || id < 0 {
					return false
				}
				value, ok := m.counted()
				if !ok || !visit(name, id, value) {
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

// counted reads a byte count and returns that many bytes.
func (r *gobReader) counted() ([]byte, bool) {
	n, ok := r.uint()
	if !ok || n > uint64(len(r.b)) {
		return nil, false
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b, true
}

// skipCounted skips a byte count and that many bytes.
func (r *gobReader) skipCounted() bool {
	_, ok := r.counted()
	return ok
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
