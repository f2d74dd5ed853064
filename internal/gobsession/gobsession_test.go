package gobsession

import (
	"bytes"
	"encoding/gob"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

type account struct {
	ID    int
	Roles []string
}

type tagged struct {
	Name  string
	Extra any // an interface inside a value: its type is defined inside the session
}

type userID string

func init() {
	gob.Register(time.Time{})
	gob.Register([]account{})
	gob.Register(account{})
	gob.Register(tagged{})
	gob.Register(userID(""))
	gob.Register(map[string]any{})
}

var deadline = time.Date(2026, 11, 29, 10, 0, 0, 123, time.UTC)

// sessions are sessions of many shapes, as a site keeps them.
func sessions() []map[string]any {
	return []map[string]any{
		{},
		{"vippslogin.claims": []byte(`{"sub":"u1"}`)},
		{"vippslogin.claims": []byte(`{"sub":"u2","name":"Kari"}`), "cart": "3 items", "n": 7, "ok": true},
		{"at": time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600)), "f": 1.5, "u": uint16(9)},
		{"account": account{ID: 4, Roles: []string{"admin"}}},
		{"user": userID("u3"), "s": "x"},
		{"nested": map[string]any{"a": 1, "b": account{ID: 5}}},
		{"tagged": tagged{Name: "t", Extra: account{ID: 6}}},
		{"tagged": tagged{Name: "t", Extra: "plain"}},
		{"vippslogin.claims": []byte(`{"sub":"u4"}`), "big": bytes.Repeat([]byte("x"), 5000)},
	}
}

func encode(t testing.TB, values map[string]any) []byte {
	t.Helper()
	b, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// same fails t unless c decodes b as scs.GobCodec does.
func same(t testing.TB, c *Codec, b []byte) {
	t.Helper()
	wantDeadline, want, wantErr := scs.GobCodec{}.Decode(b)
	gotDeadline, got, gotErr := c.Decode(b)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("Decode(%x): error %v, scs.GobCodec's %v", b, gotErr, wantErr)
	}
	if !gotDeadline.Equal(wantDeadline) || gotDeadline.Location().String() != wantDeadline.Location().String() {
		t.Fatalf("Decode(%x): deadline %v, scs.GobCodec's %v", b, gotDeadline, wantDeadline)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%x):\n got %#v\nwant %#v", b, got, want)
	}
}

func TestDecodesAsGobCodec(t *testing.T) {
	var c Codec
	// Each shape cold, then warm, then all of them interleaved twice: a
	// decoder that read one session decodes the next one right.
	for _, v := range sessions() {
		same(t, &c, encode(t, v))
		same(t, &c, encode(t, v))
	}
	for range 2 {
		for _, v := range sessions() {
			same(t, &c, encode(t, v))
		}
	}
}

func TestEncodesAsGobCodec(t *testing.T) {
	var c Codec
	for _, v := range sessions() {
		got, err := c.Encode(deadline, v)
		if err != nil {
			t.Fatal(err)
		}
		// gob writes a map in Go's order of iteration, which varies:
		// compare the bytes of sessions with one flat value.
		if want := encode(t, v); len(v) == 1 && plain(v) && !bytes.Equal(got, want) {
			t.Fatalf("Encode(%v) = %x, scs.GobCodec's %x", v, got, want)
		}
		_, values, err := scs.GobCodec{}.Decode(got)
		_, want, _ := scs.GobCodec{}.Decode(encode(t, v))
		if err != nil || !reflect.DeepEqual(values, want) {
			t.Fatalf("scs.GobCodec decodes Encode(%v) as %v, %v; want %v", v, values, err, want)
		}
	}
}

// TestEncodesSameBytes: a session of one plain value (gob writes a map of
// several in an order that varies) comes out as scs.GobCodec writes it,
// from a new encoder or a used one, before and after other sessions.
func TestEncodesSameBytes(t *testing.T) {
	var c Codec
	one := []map[string]any{
		{},
		{"vippslogin.claims": []byte(`{"sub":"u1"}`)},
		{"s": "x"}, {"i": -7}, {"u": uint64(1 << 40)}, {"b": true}, {"f": 2.5},
		{"at": time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		{"account": account{ID: 1}}, // not plain: scs.GobCodec's own way
		{"big": bytes.Repeat([]byte("x"), 5000)},
	}
	for range 3 {
		for _, v := range one {
			got, err := c.Encode(deadline, v)
			if err != nil {
				t.Fatal(err)
			}
			if want := encode(t, v); !bytes.Equal(got, want) {
				t.Fatalf("Encode(%v) =\n%x\nscs.GobCodec:\n%x", v, got, want)
			}
			if len(got) != cap(got) {
				t.Errorf("Encode(%v) keeps %d bytes of capacity unused", v, cap(got)-len(got))
			}
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("k", "v", int64(1), []byte("b"), true)
	var c Codec
	f.Fuzz(func(t *testing.T, k, s string, i int64, b []byte, ok bool) {
		for _, v := range []map[string]any{{k: s}, {k: i}, {k: b}, {k: ok}, {k: s, k + "2": i, k + "3": b}} {
			got, err := c.Encode(deadline, v)
			want, werr := scs.GobCodec{}.Encode(deadline, v)
			if (err == nil) != (werr == nil) {
				t.Fatalf("Encode(%v): error %v, scs.GobCodec's %v", v, err, werr)
			}
			if len(v) == 1 && !bytes.Equal(got, want) {
				t.Fatalf("Encode(%v) = %x, scs.GobCodec's %x", v, got, want)
			}
			_, back, err := scs.GobCodec{}.Decode(got)
			_, wantBack, _ := scs.GobCodec{}.Decode(want)
			if err != nil || !reflect.DeepEqual(back, wantBack) {
				t.Fatalf("Encode(%v) decodes as %v, %v", v, back, err)
			}
		}
	})
}

func TestDecoderIsReused(t *testing.T) {
	for _, v := range []any{[]byte("x"), "s", 1, true, 1.5, time.Now()} {
		var c Codec
		b := encode(t, map[string]any{"vippslogin.claims": []byte(`{"sub":"u1"}`), "v": v})
		same(t, &c, b)
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
		})
		// scs.GobCodec takes about 190 allocations for this session, and
		// a reused decoder about 20. (With the race detector on, a
		// sync.Pool drops a quarter of what it is given.)
		if allocs > 100 {
			t.Errorf("with a %T, Decode takes %v allocations: the decoder is not reused", v, allocs)
		}
	}
}

func TestBadBytesGetGobCodecsError(t *testing.T) {
	var c Codec
	good := encode(t, map[string]any{"k": "v"})
	same(t, &c, good) // a decoder is ready for these definitions
	defs, ok := typeDefinitions(good)
	if !ok {
		t.Fatal("no type definitions in a session")
	}
	for _, b := range [][]byte{
		nil,
		{},
		{0x00},
		{0xff},
		good[:len(good)-1],
		good[:len(defs)], // definitions without a session
		append(bytes.Clone(defs), 0x03, 0x02, 0x01, 0x01), // a value of an unknown type
		append(bytes.Clone(good), good...),                // trailing bytes: ignored, as by scs.GobCodec
		append(bytes.Clone(defs), good[len(defs):len(defs)+4]...),
	} {
		same(t, &c, b)
		same(t, &c, good) // and the next session is still read right
	}
}

// TestNoTypesLeakBetweenSessions decodes a session that defines a type inside
// a value, then a session that uses the type without defining it: like
// scs.GobCodec, the Codec must refuse the second.
func TestNoTypesLeakBetweenSessions(t *testing.T) {
	var c Codec
	first := encode(t, map[string]any{"tagged": tagged{Name: "t", Extra: account{ID: 6}}})
	same(t, &c, first)
	same(t, &c, first)
	// The second session: the same type definitions at its head, then the
	// value message of a session whose interface names account by the id
	// the first session defined inside it, without the definition.
	enc := encode(t, map[string]any{"tagged": tagged{Name: "t", Extra: "s"}})
	same(t, &c, enc)
	for i := 0; i < len(first); i++ {
		b := append(bytes.Clone(first[:i]), first[i+1:]...)
		same(t, &c, b)
		same(t, &c, first)
	}
}

func TestConcurrentDecodes(t *testing.T) {
	var c Codec
	var encoded [][]byte
	for _, v := range sessions() {
		encoded = append(encoded, encode(t, v))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				same(t, &c, encoded[(g+i)%len(encoded)])
			}
		})
	}
	wg.Wait()
}

// TestSessionsOfAnotherProcess decodes, interleaved with this process's own,
// sessions written by a process that numbered the same types differently,
// as another instance of a site may.
func TestSessionsOfAnotherProcess(t *testing.T) {
	if os.Getenv("GOBSESSION_OTHER_PROCESS") == "1" {
		// Encode other types first, so that gob gives the session's
		// types other ids than in the test's process.
		_ = gob.NewEncoder(new(bytes.Buffer)).Encode(struct{ A, B []int }{})
		_ = gob.NewEncoder(new(bytes.Buffer)).Encode(&account{})
		b, err := scs.GobCodec{}.Encode(deadline, map[string]any{"vippslogin.claims": []byte(`{"sub":"other"}`), "n": 2})
		if err != nil {
			panic(err)
		}
		os.Stdout.Write(b)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSessionsOfAnotherProcess$")
	cmd.Env = append(os.Environ(), "GOBSESSION_OTHER_PROCESS=1")
	other, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	own := encode(t, map[string]any{"vippslogin.claims": []byte(`{"sub":"own"}`), "n": 1})
	ownDefs, _ := typeDefinitions(own)
	otherDefs, ok := typeDefinitions(other)
	if !ok {
		t.Fatalf("the other process wrote %x", other)
	}
	if bytes.Equal(ownDefs, otherDefs) {
		t.Fatal("both processes numbered the types alike; the test shows nothing")
	}
	var c Codec
	for range 3 {
		same(t, &c, own)
		same(t, &c, other)
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range sessions() {
		f.Add(encode(f, v))
	}
	var c Codec
	for _, v := range sessions() {
		same(f, &c, encode(f, v)) // warm
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		same(t, &c, b)
	})
}

func BenchmarkDecode(b *testing.B) {
	s := encode(b, map[string]any{"vippslogin.claims": bytes.Repeat([]byte("c"), 300)})
	b.Run("GobCodec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := (scs.GobCodec{}).Decode(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Codec", func(b *testing.B) {
		b.ReportAllocs()
		var c Codec
		for b.Loop() {
			if _, _, err := c.Decode(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	v := map[string]any{"vippslogin.claims": bytes.Repeat([]byte("c"), 300)}
	b.Run("GobCodec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (scs.GobCodec{}).Encode(deadline, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Codec", func(b *testing.B) {
		b.ReportAllocs()
		var c Codec
		for b.Loop() {
			if _, err := c.Encode(deadline, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// gobMsg frames c as one gob message.
func gobMsg(c []byte) []byte {
	var n []byte
	if len(c) < 0x80 {
		n = []byte{byte(len(c))}
	} else {
		n = []byte{0xfe, byte(len(c) >> 8), byte(len(c))} // two bytes, negated count first
	}
	return append(n, c...)
}

// messages splits a gob stream into the contents of its messages.
func messages(t *testing.T, b []byte) [][]byte {
	var out [][]byte
	for r := (gobReader{b: b}); len(r.b) > 0; {
		msg, ok := r.counted()
		if !ok {
			t.Fatalf("not a gob stream: %x", b)
		}
		out = append(out, msg)
	}
	return out
}

// inlined is a type whose definition the crafted sessions below carry.
type inlined struct{ N int }

func init() { gob.Register(inlined{}) }

// TestNoTypesLearnedFromInlineDefinitions: a session whose plain value
// carries type definitions between its type's name and id (which gob
// accepts, and no encoder writes) must not teach a kept decoder types that
// the next session then uses without defining them. Both sessions start
// with the same definitions as every session of plain values.
func TestNoTypesLearnedFromInlineDefinitions(t *testing.T) {
	plainS := encode(t, map[string]any{"k": "s"})
	defs, _ := typeDefinitions(plainS)
	// gob writes the session of an inlined as the common definitions,
	// then a message that ends with inlined's definition right after its
	// name, then a message with inlined's id and value.
	withT := encode(t, map[string]any{"a": inlined{N: 6}})
	msgs := messages(t, withT[len(defs):])
	name := []byte("gobsession.inlined")
	end := bytes.Index(msgs[0], name) + len(name)
	if !bytes.HasPrefix(withT, defs) || len(msgs) != 2 || end < len(name) {
		t.Fatalf("gob wrote the session of an inlined otherwise: %q", msgs)
	}
	definition := msgs[0][end:]
	// A: {"k": "s"}, with inlined's definition (and a count) inside it.
	value := messages(t, plainS[len(defs):])[0]
	at := bytes.Index(value, []byte("\x06string")) + 7
	sessA := slices.Concat(defs, gobMsg(slices.Concat(value[:at], definition, []byte{0}, value[at:])))
	// B: the session of an inlined, without its definition.
	sessB := slices.Concat(defs, gobMsg(slices.Concat(msgs[0][:end], msgs[1])))

	if _, v, err := (scs.GobCodec{}).Decode(sessA); err != nil || v["k"] != "s" {
		t.Fatalf("scs.GobCodec does not read the crafted session: %v, %v", v, err)
	}
	if _, v, err := (scs.GobCodec{}).Decode(sessB); err == nil {
		t.Fatalf("scs.GobCodec reads a session that uses a type it does not define: %v", v)
	}
	var c Codec
	for range 3 {
		same(t, &c, plainS) // a kept decoder
		same(t, &c, sessA)
		same(t, &c, sessB)
	}
}

// TestNoTypesHiddenBehindACount: gob reads an interface value by its type
// and skips its byte count unread, so a count larger than the value hides
// what follows from anything that trusts the count, here a definition
// inside the session. A kept decoder must not learn it.
func TestNoTypesHiddenBehindACount(t *testing.T) {
	plainS := encode(t, map[string]any{"a": "s"})
	defs, _ := typeDefinitions(plainS)
	value := messages(t, plainS[len(defs):])[0]
	tail := []byte("\x01\x01a\x06string\x0c\x03\x00\x01s\x00")
	if !bytes.HasSuffix(value, tail) {
		t.Fatalf("gob wrote the session otherwise: %x", value)
	}
	head := value[:len(value)-len(tail)]
	// A: two values; the first one's count covers its value, and then
	// the second one's key, name and a definition of type 100 ([]string).
	def := []byte{0xff, 0xc7, 0x02, 0x02, 0x0c, 0x00, 0x00}
	hidden := slices.Concat([]byte{0x00, 0x01, 's'}, []byte("\x01b\x06string"), def)
	sessA := slices.Concat(defs, gobMsg(slices.Concat(head, []byte{0x02}, []byte("\x01a\x06string\x0c"),
		[]byte{byte(len(hidden))}, hidden,
		[]byte{0x03, 0x0c, 0x02, 0x00, 0x00, 0x00})))
	// B: a []string under type 100, not defined.
	sessB := slices.Concat(defs, gobMsg(slices.Concat(head,
		[]byte{0x01, 0x01, 'c', 0x08}, []byte("[]string"),
		[]byte{0xff, 0xc8, 0x04, 0x00, 0x01, 0x01, 'z', 0x00})))
	// C: like A, with a value of type 100 behind the count instead of
	// the definition; what follows the count reads as a simple session.
	hiddenC := slices.Concat([]byte{0x00, 0x01, 's'}, []byte("\x01b\x08[]string"),
		[]byte{0xff, 0xc8, 0x04, 0x00, 0x01, 0x01, 'z'})
	sessC := slices.Concat(defs, gobMsg(slices.Concat(head, []byte{0x02}, []byte("\x01a\x06string\x0c"),
		[]byte{byte(len(hiddenC))}, hiddenC, []byte{0x00, 0x00, 0x00})))
	if _, v, err := (scs.GobCodec{}).Decode(sessA); err != nil || len(v) != 2 {
		t.Fatalf("scs.GobCodec does not read the crafted session: %v, %v", v, err)
	}
	for _, b := range [][]byte{sessB, sessC} {
		if _, v, err := (scs.GobCodec{}).Decode(b); err == nil {
			t.Fatalf("scs.GobCodec reads a session that uses a type it does not define: %v", v)
		}
	}
	var c Codec
	for range 20 { // sync.Pool drops some of what it is given under -race
		same(t, &c, plainS)
		same(t, &c, sessA)
		same(t, &c, sessB)
		same(t, &c, sessC)
	}
}

// This process's session shape is found: its definitions, and time.Time's
// id, which sessions with time.Time values name.
func TestOwnSession(t *testing.T) {
	own := ownSession()
	want, _ := typeDefinitions(encode(t, map[string]any{"k": 1}))
	if !bytes.Equal(own.defs, want) || own.timeID < 64 {
		t.Fatalf("own session: definitions %x (want %x), time.Time's id %d", own.defs, want, own.timeID)
	}
	at := encode(t, map[string]any{"at": time.Now()})
	if !own.simple(at[len(own.defs):]) {
		t.Error("a session with a time.Time is not simple")
	}
	if own.simple(encode(t, map[string]any{"a": account{ID: 1}})[len(own.defs):]) {
		t.Error("a session with a struct of the site's is simple")
	}
}

// TestEncodeKeepsNoCallerBytes: a store that changes the bytes it was
// given in place (encrypting them, say) changes nothing that later
// sessions are written with.
func TestEncodeKeepsNoCallerBytes(t *testing.T) {
	var c Codec
	v := map[string]any{"k": "v"}
	for range 3 {
		b, err := c.Encode(deadline, v)
		if err != nil {
			t.Fatal(err)
		}
		if want := encode(t, v); !bytes.Equal(b, want) {
			t.Fatalf("Encode = %x, scs.GobCodec's %x", b, want)
		}
		for i := range b {
			b[i] ^= 0x55
		}
	}
}
