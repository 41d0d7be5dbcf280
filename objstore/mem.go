package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Mem is an in-memory Store for unit tests. Fail, when set, is returned by
// every Put.
type Mem struct {
	mu      sync.Mutex
	objects map[string]MemObject // bucket + "/" + key
	Fail    error
}

// MemObject is one stored object.
type MemObject struct {
	Body []byte
	Meta Meta
}

// NewMem makes an empty store.
func NewMem() *Mem { return &Mem{objects: map[string]MemObject{}} }

// Put stores the object.
func (m *Mem) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Meta) error {
	m.mu.Lock()
	fail := m.Fail
	m.mu.Unlock()
	if fail != nil {
		return fail
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, body); err != nil {
		return err
	}
	if size >= 0 && int64(b.Len()) != size {
		return fmt.Errorf("mem put %s/%s: %d bytes, declared %d", bucket, key, b.Len(), size)
	}
	m.mu.Lock()
	m.objects[bucket+"/"+key] = MemObject{Body: b.Bytes(), Meta: meta}
	m.mu.Unlock()
	return nil
}

// DeletePrefix deletes the objects under prefix.
func (m *Mem) DeletePrefix(ctx context.Context, bucket, prefix string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.objects {
		if strings.HasPrefix(k, bucket+"/"+prefix) {
			delete(m.objects, k)
			n++
		}
	}
	return n, nil
}

// URL is a mem:// address.
func (m *Mem) URL(bucket, key string) string { return "mem://" + bucket + "/" + key }

// Keys lists the stored keys of a bucket, sorted.
func (m *Mem) Keys(bucket string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objects {
		if b, key, _ := strings.Cut(k, "/"); b == bucket {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// Get returns one object.
func (m *Mem) Get(bucket, key string) (MemObject, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[bucket+"/"+key]
	return o, ok
}
