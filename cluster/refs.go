package cluster

import (
	"fmt"
	"maps"
	"slices"
)

// Blob references. A blob record lives exactly as long as something in the
// state references it, so nothing ever has to sweep the whole state for
// unreferenced blobs:
//   - a job in the state references its source and its subtitle tracks
//     (while it keeps its source: not expired, and not done with
//     keep_source:false), its manifest or, for
//     version-1 jobs not compacted yet, each published file (until it
//     expires), and while it has work left its audio;
//   - a chunk of a job with work left references its source, its
//     encoded outputs and its thumbnail bundle (released with the chunks
//     when the job finishes: the published storyboard replaces them).
// Sources, manifests and version-1 published files are durable (kept at the
// replication factor); the rest is intermediate. Every change to a job or a
// chunk goes through putJob or putChunk, which count the difference.
// checkRefs (tests) recounts from scratch.

type jobRef struct {
	b       BlobRef
	durable bool
	set     bool
}

// jobRefs lists what a job record references by itself (not its chunks).
func jobRefs(j *Job) []jobRef {
	if j == nil {
		return nil
	}
	var out []jobRef
	if j.ExpiredAt.IsZero() {
		if j.keepsSource() && !j.SourceBlob.IsZero() {
			out = append(out, jobRef{b: j.SourceBlob, durable: true})
			for _, s := range j.Subtitles {
				out = append(out, jobRef{b: s.Blob, durable: true})
			}
		}
		if !j.Manifest.IsZero() {
			out = append(out, jobRef{b: j.Manifest, durable: true, set: true})
		}
		for _, rel := range slices.Sorted(maps.Keys(j.Outputs)) {
			if b := j.Outputs[rel]; !b.IsZero() {
				out = append(out, jobRef{b: b, durable: true})
			}
		}
	}
	if !j.State.Terminal() && !j.Audio.IsZero() {
		out = append(out, jobRef{b: j.Audio})
	}
	return out
}

// chunkRefs lists what a chunk of a running job references.
func chunkRefs(c *Chunk) []jobRef {
	if c == nil {
		return nil
	}
	out := make([]jobRef, 0, 2+len(c.Outputs))
	if !c.Source.IsZero() {
		out = append(out, jobRef{b: c.Source})
	}
	for _, o := range c.Outputs {
		if !o.IsZero() {
			out = append(out, jobRef{b: o})
		}
	}
	if !c.Thumbs.IsZero() {
		out = append(out, jobRef{b: c.Thumbs})
	}
	return out
}

// keepsSource reports whether a job still needs its source: always, but
// for a done job submitted with keep_source:false.
func (j *Job) keepsSource() bool { return !(j.DropSource && j.State == JobDone) }

// putJob replaces a job's record (old nil: a new job; j nil: removed) and
// keeps indexes, counts and references in step. A job that stops having
// work left lets go of its chunks' media.
func (s *State) putJob(old, j *Job) {
	if j != nil {
		s.intern(j)
	}
	for _, r := range jobRefs(j) { // new references first: a blob in both keeps its record
		s.ref(r)
	}
	for _, r := range jobRefs(old) {
		s.unref(r)
	}
	if old != nil && !old.State.Terminal() && (j == nil || j.State.Terminal()) {
		s.chunks.AscendGreaterOrEqual(&Chunk{JobID: old.ID}, func(c *Chunk) bool {
			if c.JobID != old.ID {
				return false
			}
			for _, r := range chunkRefs(c) {
				s.unref(r)
			}
			return true
		})
	}
	s.ix.update(old, j)
	if old != nil {
		s.counts[old.State]--
		if s.counts[old.State] == 0 {
			delete(s.counts, old.State)
		}
	}
	switch {
	case j != nil:
		s.jobs.ReplaceOrInsert(j)
		s.counts[j.State]++
		s.out.touched = append(s.out.touched, j.ID)
	case old != nil:
		s.jobs.Delete(old)
		s.out.touched = append(s.out.touched, old.ID)
	}
}

// putChunk replaces a chunk record (old nil: new; c nil: removed); active
// says whether its job has work left, so that its media count as
// referenced.
func (s *State) putChunk(old, c *Chunk, active bool) {
	if active {
		for _, r := range chunkRefs(c) {
			s.ref(r)
		}
		for _, r := range chunkRefs(old) {
			s.unref(r)
		}
	}
	if c != nil {
		s.chunks.ReplaceOrInsert(c)
	} else if old != nil {
		s.chunks.Delete(old)
	}
}

func (s *State) ref(r jobRef) {
	var nb BlobHolders
	if b, ok := s.Blob(r.b.Hash); ok {
		nb = *b
	} else {
		nb = BlobHolders{Hash: r.b.Hash, Size: r.b.Size}
	}
	nb.refs++
	if r.durable {
		nb.durable++
		if nb.durable == 1 {
			s.out.durable = append(s.out.durable, nb.Hash)
		}
	}
	if r.set && !nb.set {
		nb.set = true
		s.sets[nb.Hash] = true
		s.setGen++
	}
	s.blobs.ReplaceOrInsert(&nb)
}

func (s *State) unref(r jobRef) {
	b, ok := s.Blob(r.b.Hash)
	if !ok {
		return // checkRefs catches the miscount in tests
	}
	if b.refs <= 1 {
		s.blobs.Delete(b)
		delete(s.sets, b.Hash)
		s.out.released = append(s.out.released, b.Ref())
		return
	}
	nb := *b
	nb.refs--
	if r.durable {
		nb.durable--
	}
	s.blobs.ReplaceOrInsert(&nb)
}

// addHolder records that node holds a referenced blob (for a manifest:
// every file it lists as well). A blob nothing references is not recorded:
// its bytes are for the collector.
func (s *State) addHolder(b BlobRef, node string) error {
	if b.IsZero() || node == "" {
		return nil
	}
	rec, ok := s.Blob(b.Hash)
	if !ok || rec.Nodes.Has(node) {
		return nil
	}
	nb := *rec
	nb.Nodes = rec.Nodes.With(s.name(node))
	s.blobs.ReplaceOrInsert(&nb)
	return nil
}

// removeHolder records that node no longer holds a blob. The record stays
// while something references the blob, holders or not.
func (s *State) removeHolder(hash, node string) error {
	rec, ok := s.Blob(hash)
	if !ok || !rec.Nodes.Has(node) {
		return nil
	}
	nb := *rec
	nb.Nodes = rec.Nodes.Without(node)
	s.blobs.ReplaceOrInsert(&nb)
	if nb.durable > 0 {
		s.out.durable = append(s.out.durable, hash)
	}
	return nil
}

// checkRefs recounts every reference from scratch and says where the
// records disagree (nil when they all match). Tests run it after applies;
// it walks the whole state.
func (s *State) checkRefs() error {
	type count struct {
		refs, durable int
		set           bool
		size          int64
	}
	want := map[string]*count{}
	add := func(r jobRef) {
		c := want[r.b.Hash]
		if c == nil {
			c = &count{size: r.b.Size}
			want[r.b.Hash] = c
		}
		c.refs++
		if r.durable {
			c.durable++
		}
		c.set = c.set || r.set
	}
	s.jobs.Ascend(func(j *Job) bool {
		for _, r := range jobRefs(j) {
			add(r)
		}
		if !j.State.Terminal() {
			s.chunks.AscendGreaterOrEqual(&Chunk{JobID: j.ID}, func(c *Chunk) bool {
				if c.JobID != j.ID {
					return false
				}
				for _, r := range chunkRefs(c) {
					add(r)
				}
				return true
			})
		}
		return true
	})
	var errs []string
	s.blobs.Ascend(func(b *BlobHolders) bool {
		c := want[b.Hash]
		switch {
		case c == nil:
			errs = append(errs, fmt.Sprintf("%s: recorded with %d refs, referenced by nothing", b.Hash[:8], b.refs))
		case c.refs != b.refs || c.durable != b.durable || c.set != b.set:
			errs = append(errs, fmt.Sprintf("%s: recorded refs %d durable %d set %v, counted %d %d %v",
				b.Hash[:8], b.refs, b.durable, b.set, c.refs, c.durable, c.set))
		}
		delete(want, b.Hash)
		return true
	})
	for h, c := range want {
		errs = append(errs, fmt.Sprintf("%s: referenced %d times, no record", h[:min(8, len(h))], c.refs))
	}
	n := map[JobState]int{}
	s.jobs.Ascend(func(j *Job) bool { n[j.State]++; return true })
	if !maps.Equal(n, s.counts) {
		errs = append(errs, fmt.Sprintf("counts %v, recounted %v", s.counts, n))
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("state references disagree: %v", errs)
	}
	return nil
}
