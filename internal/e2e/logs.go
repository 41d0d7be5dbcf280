package e2e

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// Logs collects each node's output, shown when a test fails.
type Logs struct {
	mu  sync.Mutex
	buf map[string]*bytes.Buffer
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Writer is where the node called name writes its output.
func (l *Logs) Writer(name string) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		l.buf = map[string]*bytes.Buffer{}
	}
	if l.buf[name] == nil {
		l.buf[name] = &bytes.Buffer{}
	}
	return lockedWriter{&l.mu, l.buf[name]}
}

// Count is how many times s appears in every node's output.
func (l *Logs) Count(s string) int {
	n := 0
	l.Each(func(_ string, b []byte) { n += bytes.Count(b, []byte(s)) })
	return n
}

// Of is the output of the node called name so far.
func (l *Logs) Of(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buf[name]; b != nil {
		return b.String()
	}
	return ""
}

// Each calls f with every node's output so far, in name order, while no
// node can write (f must not keep b).
func (l *Logs) Each(f func(name string, b []byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.buf))
	for name := range l.buf {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f(name, l.buf[name].Bytes())
	}
}

// Dump logs the last 40 000 bytes of every node's output.
func (l *Logs) Dump(t testing.TB) {
	l.Each(func(name string, b []byte) {
		t.Logf("---- %s ----\n%s", name, Tail(string(b), 40000))
	})
}

// Save writes each node's output to dir/<name>.log.
func (l *Logs) Save(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	l.Each(func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name+".log"), b, 0o644); err != nil {
			t.Log(err)
		}
	})
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Buffer is a bytes.Buffer that a process's output streams (or several
// goroutines) may write to at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail is the last n bytes written.
func (b *Buffer) Tail(n int) string { return Tail(b.String(), n) }
