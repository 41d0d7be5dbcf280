package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/objstore"
)

// orderStore records the order of puts over an objstore.Mem.
type orderStore struct {
	*objstore.Mem
	mu   sync.Mutex
	keys []string
}

func (o *orderStore) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, meta objstore.Meta) error {
	if err := o.Mem.Put(ctx, bucket, key, body, size, meta); err != nil {
		return err
	}
	o.mu.Lock()
	o.keys = append(o.keys, key)
	o.mu.Unlock()
	return nil
}

type nopSeeker struct{ *bytes.Reader }

func (nopSeeker) Close() error { return nil }

// TestPublisherUpload (no S3 server): every manifest file goes under the
// target's prefix and the job ID with its content type, the playlists and
// MPD after every media file, and publishStatus reads the option, the
// node's default and "none".
func TestPublisherUpload(t *testing.T) {
	files := map[string]string{"master.m3u8": "#EXTM3U", "manifest.mpd": "<MPD/>", "hls/0.m3u8": "#EXTM3U",
		"seg-0-00001.m4s": "seg", "init-0.mp4": "init", "mp4/180p.mp4": "mp4", "subs/0-en.vtt": "WEBVTT", "poster.jpg": "jpg"}
	m := &cluster.Manifest{V: 1, Job: "j1"}
	byHash := map[string][]byte{}
	for rel, body := range files {
		h := strings.Repeat(string(rune('a'+len(byHash))), 64)
		byHash[h] = []byte(body)
		m.Files = append(m.Files, cluster.ManifestFile{Path: rel, Hash: h, Size: int64(len(body))})
	}
	mem := &orderStore{Mem: objstore.NewMem()}
	p := &publisher{
		open: func(_ context.Context, ref, _ cluster.BlobRef) (io.ReadSeekCloser, error) {
			return nopSeeker{bytes.NewReader(byHash[ref.Hash])}, nil
		},
		manifest: func(context.Context, cluster.Job) (*cluster.Manifest, error) { return m, nil },
		connect:  func(context.Context) (publishStore, error) { return mem, nil },
		files:    3, inflight: map[string]bool{},
	}
	j := cluster.Job{ID: "j1", Manifest: cluster.BlobRef{Hash: strings.Repeat("f", 64), Size: 1},
		Publish: &cluster.PublishStatus{Target: "s3://media/vod/", State: cluster.PublishPending}}
	res, err := p.upload(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.files != len(files) || res.base != "mem://media/vod/j1/" {
		t.Fatalf("result %+v", res)
	}
	for rel, body := range files {
		o, ok := mem.Get("media", "vod/j1/"+rel)
		if !ok || string(o.Body) != body || o.Meta.ContentType != objstore.ContentType(rel) || o.Meta.CacheControl != objstore.CacheControl(rel) {
			t.Errorf("%s: %+v, %v", rel, o, ok)
		}
	}
	seenManifest := false
	for _, k := range mem.keys {
		isManifest := strings.HasSuffix(k, ".m3u8") || strings.HasSuffix(k, ".mpd")
		if seenManifest && !isManifest {
			t.Fatalf("media %s uploaded after a manifest: %v", k, mem.keys)
		}
		seenManifest = seenManifest || isManifest
	}
	mem.Fail = errors.New("boom")
	if _, err := p.upload(context.Background(), j); err == nil {
		t.Fatal("a failing store published")
	}
	mem.Fail = nil
	if n, err := p.remove(context.Background(), j); err != nil || n != len(files) || len(mem.Keys("media")) != 0 {
		t.Fatalf("remove: %d, %v, left %v", n, err, mem.Keys("media"))
	}

	n := &Node{cfg: Config{Publish: "s3://media/default", PublishExpire: true}}
	for opt, want := range map[string]string{"": "s3://media/default/", "s3://other/x": "s3://other/x/", "none": ""} {
		ps, err := n.publishStatus(jobOptions{Publish: opt})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want == "" && ps != nil, want != "" && (ps == nil || ps.Target != want || !ps.Expire || ps.State != cluster.PublishWaiting):
			t.Errorf("publish %q: %+v, want %q", opt, ps, want)
		}
	}
	no := false
	if ps, _ := n.publishStatus(jobOptions{PublishExpire: &no}); ps == nil || ps.Expire {
		t.Errorf("publish_expire:false: %+v", ps)
	}
	if _, err := n.publishStatus(jobOptions{Publish: "s3://x/"}); err == nil {
		t.Error("a bad bucket passed")
	}
}
