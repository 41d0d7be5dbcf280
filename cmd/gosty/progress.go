package main

import (
	"context"
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress draws `gosty submit`'s bars on stderr: one upload bar (bytes) and
// one transcode bar (job progress) per file. A nil container (progress off)
// hands out bars that do nothing, so callers never check.
type progress struct {
	p *mpb.Progress
}

// Bars draw even when w is not a terminal: off is the caller's choice (--progress).
func newProgress(ctx context.Context, w io.Writer, on bool) *progress {
	if !on {
		return &progress{}
	}
	return &progress{p: mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithAutoRefresh())}
}

// wait lets the bars draw their final state.
func (p *progress) wait() {
	if p.p != nil {
		p.p.Wait()
	}
}

// transcodeSteps is the resolution of a transcode bar (progress is 0..1).
const transcodeSteps = 1000

func (p *progress) upload(name string, size int64) *bar {
	if p.p == nil {
		return &bar{}
	}
	b := p.p.AddBar(size,
		mpb.PrependDecorators(decor.Name("upload    "+name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), "done"),
		))
	return &bar{b: b}
}

func (p *progress) transcode(name string) *bar {
	if p.p == nil {
		return &bar{}
	}
	br := &bar{}
	br.b = p.p.AddBar(transcodeSteps,
		mpb.PrependDecorators(decor.Name("transcode "+name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string { return br.stateName() }, decor.WCSyncSpace),
			decor.Percentage(decor.WCSyncSpace),
		))
	return br
}

// bar is one progress bar; the zero value does nothing.
type bar struct {
	b     *mpb.Bar
	mu    sync.Mutex
	state string
}

// reader counts what passes through r on the bar.
func (b *bar) reader(r io.Reader) io.Reader {
	if b.b == nil {
		return r
	}
	pr, err := b.b.ProxyReader(r)
	if err != nil { // the container already stopped: draw nothing
		return r
	}
	return pr
}

// setCurrent moves an upload bar to n bytes (where a resumed upload
// starts again).
func (b *bar) setCurrent(n int64) {
	if b.b != nil {
		b.b.SetCurrent(n)
	}
}

func (b *bar) set(state string, fraction float64) {
	if b.b == nil {
		return
	}
	b.mu.Lock()
	b.state = state
	b.mu.Unlock()
	b.b.SetCurrent(int64(fraction * transcodeSteps))
}

func (b *bar) stateName() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// done completes the bar on success and stops it where it is otherwise.
func (b *bar) done(ok bool) {
	if b.b == nil {
		return
	}
	if ok {
		b.b.SetTotal(-1, true)
	} else {
		b.b.Abort(false)
	}
}
