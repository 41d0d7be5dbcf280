package cluster

import (
	"bytes"
	"io"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct{ bytes.Buffer }

func memSinkFrom(s string) *memSink {
	m := &memSink{}
	m.WriteString(s)
	return m
}
func (m *memSink) ID() string            { return "mem" }
func (m *memSink) Cancel() error         { return nil }
func (m *memSink) Close() error          { return nil }
func (m *memSink) reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(m.Bytes())) }
