// Package strictjson decodes one JSON object the way every body and
// options field gosty reads is decoded: unknown fields are an error, not
// ignored (a typo such as "rendition" would otherwise silently take the
// default), and so is anything after the object.
package strictjson

import (
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailing is Decode's error for data after the object.
var ErrTrailing = errors.New("trailing data after the JSON object")

// Decode reads one JSON value from r into v, with no unknown fields and
// nothing after it. The decoder's own errors come back as they are (a
// *http.MaxBytesError from a bounded reader included), except one met
// after the object, which is ErrTrailing.
func Decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}
