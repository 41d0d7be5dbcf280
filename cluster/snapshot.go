package cluster

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
)

// Snapshot formats.
//
//   - Version 1 (the first release): one JSON object, {"v":1,"state":{...}}
//     with jobs (chunks inline), tasks, blobs, nodes and retired as maps.
//     Read only; restoring one converts it.
//   - Version 2: a gzip stream of JSON lines. The first line is a header
//     ({"format":"gosty-state","v":2,"log_version":N,...counts}); then one
//     record a line ({"job":…}, {"chunk":…}, {"task":…}, {"blob":…},
//     {"node":…}, {"retired":…}), jobs before their chunks; the last line
//     is {"end":true}, so a cut-off stream is refused rather than restored
//     in part. Only persisted facts are written; blob references and the
//     job indexes are derived again on restore.
//
// A snapshot is taken in O(1) under the lock (the trees clone lazily) and
// written out by raft without it, a record at a time: no second copy of
// the state is ever built in memory.

// SnapshotVersion is the snapshot format this build writes.
const SnapshotVersion = 2

const snapshotFormat = "gosty-state"

type snapHeader struct {
	Format     string `json:"format"`
	V          int    `json:"v"`
	LogVersion int    `json:"log_version"`
	Jobs       int    `json:"jobs"`
	Chunks     int    `json:"chunks"`
	Tasks      int    `json:"tasks"`
	Blobs      int    `json:"blobs"`
}

type snapBlob struct {
	Hash  string   `json:"hash"`
	Size  int64    `json:"size"`
	Nodes []string `json:"nodes,omitempty"`
}

type snapRetired struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// snapLine is one record line; exactly one field is set.
type snapLine struct {
	Job     *Job         `json:"job,omitempty"`
	Chunk   *Chunk       `json:"chunk,omitempty"`
	Task    *Task        `json:"task,omitempty"`
	Blob    *snapBlob    `json:"blob,omitempty"`
	Node    *NodeJoin    `json:"node,omitempty"`
	Retired *snapRetired `json:"retired,omitempty"`
	End     bool         `json:"end,omitempty"`
}

// frozen is a point-in-time view of the persisted parts of a state: the
// same fields, its trees cloned and its maps copied.
type frozen persisted

// freeze takes the view. The caller holds the state exclusively (cloning a
// tree writes to it); the maps it copies are small (nodes of the cluster,
// retired counts of running jobs).
func (s *State) freeze() *frozen {
	return &frozen{version: s.version, jobs: s.jobs.Clone(), chunks: s.chunks.Clone(), tasks: s.tasks.Clone(),
		blobs: s.blobs.Clone(), nodes: maps.Clone(s.nodes), retired: maps.Clone(s.retired)}
}

// WriteTo writes the view in the format of its log version: version 2
// once the cluster writes log version 2, else version 1, which every node
// of the previous release can restore (a leader sends its snapshot to a
// follower that fell behind, whatever release the follower runs).
func (f *frozen) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	if f.version < LogV2 {
		bw := bufio.NewWriterSize(cw, 256<<10)
		err := f.writeV1(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
		return cw.n, nil
	}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(zw, 256<<10)
	err = f.writeLines(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	return cw.n, nil
}

// writeLines writes the header and the records as JSON lines.
func (f *frozen) writeLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	var werr error
	put := func(v any) bool {
		if werr == nil {
			werr = enc.Encode(v)
		}
		return werr == nil
	}
	put(snapHeader{Format: snapshotFormat, V: SnapshotVersion, LogVersion: f.version,
		Jobs: f.jobs.Len(), Chunks: f.chunks.Len(), Tasks: f.tasks.Len(), Blobs: f.blobs.Len()})
	f.jobs.Ascend(func(j *Job) bool { return put(snapLine{Job: j}) })
	f.chunks.Ascend(func(c *Chunk) bool { return put(snapLine{Chunk: c}) })
	f.tasks.Ascend(func(t *Task) bool { return put(snapLine{Task: t}) })
	f.blobs.Ascend(func(b *BlobHolders) bool {
		return put(snapLine{Blob: &snapBlob{Hash: b.Hash, Size: b.Size, Nodes: b.Nodes}})
	})
	for _, id := range slices.Sorted(maps.Keys(f.nodes)) {
		put(snapLine{Node: &NodeJoin{ID: id, Name: f.nodes[id]}})
	}
	for _, id := range slices.Sorted(maps.Keys(f.retired)) {
		put(snapLine{Retired: &snapRetired{ID: id, Attempt: f.retired[id]}})
	}
	put(snapLine{End: true})
	return werr
}

// writeV1 writes the view in the version 1 format, one record at a time:
// {"v":1,"state":{"jobs":{id: job with its chunks},"tasks":{...},
// "blobs":{hash:{"size","nodes"}},"nodes":{...},"retired":{...}}}.
func (f *frozen) writeV1(w io.Writer) error {
	var werr error
	raw := func(s string) {
		if werr == nil {
			_, werr = io.WriteString(w, s)
		}
	}
	entry := func(first *bool, key string, v any) bool {
		if werr != nil {
			return false
		}
		if !*first {
			raw(",")
		}
		*first = false
		k, _ := json.Marshal(key)
		b, err := json.Marshal(v)
		if err != nil {
			werr = err
			return false
		}
		raw(string(k) + ":" + string(b))
		return werr == nil
	}
	raw(`{"v":1,"state":{"jobs":{`)
	first := true
	f.jobs.Ascend(func(j *Job) bool {
		full := *j
		full.Chunks = []Chunk{}
		f.chunks.AscendGreaterOrEqual(&Chunk{JobID: j.ID}, func(c *Chunk) bool {
			if c.JobID != j.ID {
				return false
			}
			cc := *c
			cc.JobID = ""
			full.Chunks = append(full.Chunks, cc)
			return true
		})
		return entry(&first, j.ID, &full)
	})
	raw(`},"tasks":{`)
	first = true
	f.tasks.Ascend(func(t *Task) bool { return entry(&first, t.ID, t) })
	raw(`},"blobs":{`)
	first = true
	f.blobs.Ascend(func(b *BlobHolders) bool {
		return entry(&first, b.Hash, struct {
			Size  int64           `json:"size"`
			Nodes map[string]bool `json:"nodes"`
		}{b.Size, b.Nodes.Map()})
	})
	raw(`},"nodes":{`)
	first = true
	for _, id := range slices.Sorted(maps.Keys(f.nodes)) {
		entry(&first, id, f.nodes[id])
	}
	raw(`},"retired":{`)
	first = true
	for _, id := range slices.Sorted(maps.Keys(f.retired)) {
		entry(&first, id, f.retired[id])
	}
	raw("}}}\n")
	return werr
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadState reads a snapshot in either format into a new state.
func ReadState(r io.Reader) (*State, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(2)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		return readStateV2(br)
	}
	return readStateV1(br)
}

func readStateV2(r io.Reader) (*State, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 256<<10)
	head, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	var h snapHeader
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if h.Format != snapshotFormat || h.V != SnapshotVersion {
		return nil, fmt.Errorf("read snapshot: format %q version %d, this build reads %q version 1..%d", h.Format, h.V, snapshotFormat, SnapshotVersion)
	}
	if h.LogVersion < LogV1 || h.LogVersion > CommandVersion {
		return nil, fmt.Errorf("read snapshot: log version %d, this build reads 1..%d", h.LogVersion, CommandVersion)
	}
	s := NewState()
	s.version = h.LogVersion
	done := make(chan struct{})
	batches, wait := decodeLines(br, done)
	defer wait() // the reader goroutine is done with br before zr closes
	defer close(done)
	n := 0
	for b := range batches {
		if b.err != nil {
			return nil, fmt.Errorf("read snapshot record %d: %w", n+b.failed, b.err)
		}
		for _, l := range b.lines {
			if end, err := s.restoreLine(&l); err != nil {
				return nil, fmt.Errorf("read snapshot record %d: %w", n, err)
			} else if end {
				s.takeReport()
				return s, nil
			}
			n++
		}
	}
	return nil, fmt.Errorf("read snapshot: cut off after %d records", n)
}

// restoreLine puts one record into a state being restored; end reports
// the end record.
func (s *State) restoreLine(l *snapLine) (end bool, err error) {
	switch {
	case l.End:
		return true, nil
	case l.Job != nil:
		if l.Job.ID == "" || s.job(l.Job.ID) != nil {
			return false, fmt.Errorf("job %q missing or twice", l.Job.ID)
		}
		l.Job.Chunks = nil
		s.putJob(nil, l.Job)
	case l.Chunk != nil:
		j := s.job(l.Chunk.JobID)
		if j == nil {
			return false, fmt.Errorf("chunk of unknown job %q", l.Chunk.JobID)
		}
		s.putChunk(nil, l.Chunk, !j.State.Terminal())
	case l.Task != nil:
		s.tasks.ReplaceOrInsert(l.Task)
	case l.Blob != nil:
		s.restoreHolders(l.Blob) // after every job and chunk: the references exist
	case l.Node != nil:
		s.nodes[l.Node.ID] = l.Node.Name
	case l.Retired != nil:
		s.retired[l.Retired.ID] = l.Retired.Attempt
	default:
		return false, errors.New("empty record")
	}
	return false, nil
}

// lineBatch is a run of decoded snapshot lines (or the error of the line
// failed lines into the run).
type lineBatch struct {
	lines  []snapLine
	failed int
	err    error
}

// decodeLines decodes JSON lines on every core, in batches, and delivers
// the batches in order. Decoding is most of a restore's time; inserting
// stays on the caller's goroutine. It stops when r ends or done closes.
// (A zero-copy decoder such as goccy/go-json restores three times faster
// but its strings keep every record's line alive: twice the memory.)
func decodeLines(r *bufio.Reader, done <-chan struct{}) (<-chan lineBatch, func()) {
	const batchLines = 512
	workers := max(1, runtime.GOMAXPROCS(0))
	order := make(chan chan lineBatch, 2*workers)
	out := make(chan lineBatch)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // read lines, hand each batch to a decoder, keep their order
		defer wg.Done()
		defer close(order)
		for eof := false; !eof; {
			raw := make([][]byte, 0, batchLines)
			for len(raw) < batchLines {
				line, err := r.ReadBytes('\n')
				if len(bytes.TrimSpace(line)) > 0 {
					raw = append(raw, line)
				}
				if err != nil {
					eof = true
					break
				}
			}
			if len(raw) == 0 {
				return
			}
			res := make(chan lineBatch, 1)
			select {
			case order <- res:
			case <-done:
				return
			}
			select {
			case sem <- struct{}{}:
			case <-done:
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				b := lineBatch{lines: make([]snapLine, len(raw))}
				for i, line := range raw {
					if err := json.Unmarshal(line, &b.lines[i]); err != nil {
						b.lines, b.failed, b.err = b.lines[:i], i, err
						break
					}
				}
				res <- b
			}()
		}
	}()
	wg.Add(1)
	go func() { // deliver in order
		defer wg.Done()
		defer close(out)
		for res := range order {
			select {
			case b := <-res:
				select {
				case out <- b:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out, wg.Wait
}

// restoreHolders puts a snapshot's holders on a referenced blob's record.
func (s *State) restoreHolders(b *snapBlob) {
	rec, ok := s.Blob(b.Hash)
	if !ok {
		return // nothing references it any more
	}
	nb := *rec
	nb.Nodes = make(NodeSet, 0, len(b.Nodes))
	for _, n := range b.Nodes {
		nb.Nodes = append(nb.Nodes, s.name(n))
	}
	slices.Sort(nb.Nodes)
	nb.Nodes = slices.Compact(nb.Nodes)
	if b.Size > 0 {
		nb.Size = b.Size
	}
	s.blobs.ReplaceOrInsert(&nb)
}

// stateV1 is the first release's snapshot body.
type stateV1 struct {
	Jobs  map[string]*Job  `json:"jobs"`
	Tasks map[string]*Task `json:"tasks"`
	Blobs map[string]*struct {
		Size  int64           `json:"size"`
		Nodes map[string]bool `json:"nodes"`
	} `json:"blobs"`
	Nodes   map[string]string `json:"nodes"`
	Retired map[string]int    `json:"retired"`
}

func readStateV1(r io.Reader) (*State, error) {
	var env struct {
		V     int      `json:"v"`
		State *stateV1 `json:"state"`
	}
	if err := json.NewDecoder(r).Decode(&env); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if env.V != LogV1 {
		return nil, fmt.Errorf("read snapshot: unsupported version %d", env.V)
	}
	s := NewState()
	if env.State == nil {
		return s, nil
	}
	old := env.State
	for _, id := range slices.Sorted(maps.Keys(old.Jobs)) {
		j := old.Jobs[id]
		if j == nil || j.ID != id {
			return nil, fmt.Errorf("read snapshot: job %q is malformed", id)
		}
		chunks := j.Chunks
		j.Chunks = nil
		j.ChunkCount = len(chunks)
		s.putJob(nil, j)
		for i := range chunks {
			c := chunks[i]
			c.JobID, c.Index = j.ID, i
			s.putChunk(nil, &c, !j.State.Terminal())
		}
	}
	for id, t := range old.Tasks {
		if t != nil && t.ID == id {
			s.tasks.ReplaceOrInsert(t)
		}
	}
	for h, b := range old.Blobs {
		if b != nil {
			s.restoreHolders(&snapBlob{Hash: h, Size: b.Size, Nodes: slices.Sorted(maps.Keys(b.Nodes))})
		}
	}
	maps.Copy(s.nodes, old.Nodes)
	maps.Copy(s.retired, old.Retired)
	s.takeReport()
	return s, nil
}
