package strictjson

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type obj struct {
		A int `json:"a"`
	}
	for _, c := range []struct {
		in   string
		want error // nil, ErrTrailing, or errAny for a decoder error
	}{
		{`{"a":1}`, nil},
		{" {\"a\":1}\n ", nil},
		{`{"a":1} {}`, ErrTrailing},
		{`{"a":1} x`, ErrTrailing},
		{`{"a":1} }`, ErrTrailing},
		{`{"b":1}`, errAny},
		{`{"a":"x"}`, errAny},
		{``, errAny},
	} {
		var o obj
		err := Decode(strings.NewReader(c.in), &o)
		switch {
		case c.want == errAny:
			if err == nil || errors.Is(err, ErrTrailing) {
				t.Errorf("%q: got %v, want a decoder error", c.in, err)
			}
		case c.want != errAny && err != c.want:
			t.Errorf("%q: got %v, want %v", c.in, err, c.want)
		}
	}
}

var errAny = errors.New("any decoder error")
