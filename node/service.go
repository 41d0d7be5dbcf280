package node

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/webhook"
	"github.com/gosty/gosty/transcoder"
)

// service is what the HTTP API sees of a node: it implements the interfaces
// httpapi declares (Jobs, Blobs, Cluster, Health).
type service struct{ n *Node }

// Submit stores an upload, probes and plans it, and commits the job. Bad
// media and bad options are refused here, before any work is queued.
func (s service) Submit(ctx context.Context, up httpapi.Upload) (cluster.Job, error) {
	jo, err := parseJobOptions(up.Options)
	if err != nil {
		return cluster.Job{}, cluster.Invalid(err)
	}
	submitter, err := submitterOf(up.By, jo)
	if err != nil {
		return cluster.Job{}, cluster.Invalid(err)
	}
	return s.submitSource(ctx, sourceJob{id: newJobID(), name: up.Filename, submitter: submitter, sidecars: up.Sidecars}, up.Body, jo)
}

// sourceJob names the job a source becomes: its ID, the URL a fetched
// source came from ("" for an upload: a URL ingest's job.submit replaces
// its ingesting record, ingest.go), the file name people see, who
// submitted it, and the subtitle files sent with it.
type sourceJob struct {
	id, url, name, submitter string
	sidecars                 []httpapi.Sidecar
}

// submitterOf is who submits a job: the hash of the caller's API token when
// tokens are configured (the client_id option is refused then), else
// "client:" and the client_id option, else "" (anonymous).
func submitterOf(by httpapi.Submitter, jo jobOptions) (string, error) {
	if by.Tokens {
		if jo.ClientID != "" {
			return "", errors.New("options: client_id: this cluster names submitters by their API token")
		}
		return by.ID, nil
	}
	if jo.ClientID != "" {
		return "client:" + jo.ClientID, nil
	}
	return "", nil
}

// submitSource stores a source for the job src names, probes and plans it
// with the options jo (parsed once, by the caller), and commits the job.
func (s service) submitSource(ctx context.Context, src sourceJob, body io.Reader, jo jobOptions) (cluster.Job, error) {
	n := s.n
	id, filename := src.id, src.name
	opts, publish, err := n.checkPolicy(ctx, jo)
	if err != nil {
		return cluster.Job{}, cluster.Invalid(err)
	}
	owner := new(int) // a unique pin owner for this upload
	defer n.pins.Release(owner)
	ref, cp, err := n.storeSource(ctx, id, body, owner)
	defer cp.abort()
	if err != nil {
		return cluster.Job{}, fmt.Errorf("upload %s: %w", filename, err)
	}
	if ref.Size == 0 {
		return cluster.Job{}, &transcoder.MediaError{Reason: "the uploaded file is empty"}
	}
	type acked struct {
		holders []string
		err     error
	}
	ack := make(chan acked, 1)
	go func() {
		h, err := cp.finish(ref)
		ack <- acked{h, err}
	}()
	path, err := n.blobs.Path(ref.Hash)
	if err != nil {
		return cluster.Job{}, err
	}
	probe, rends, err := n.planSource(ctx, path, filename, opts)
	if err != nil {
		return cluster.Job{}, err
	}
	subs, warnings, err := n.subtitleTracks(ctx, path, probe, src.sidecars, owner) // subtitles.go
	if err != nil {
		return cluster.Job{}, fmt.Errorf("upload %s: %w", filename, err)
	}
	copied := <-ack
	if copied.err != nil {
		return cluster.Job{}, fmt.Errorf("upload %s: %w", filename, copied.err)
	}
	job := cluster.Job{
		ID:           id,
		Name:         displayName(filename),
		Options:      cluster.OptionsOf(opts),
		Source:       cluster.ProbeOf(*probe),
		SourceBlob:   ref,
		Origin:       n.cfg.Name,
		SourceURL:    src.url,
		Renditions:   cluster.RenditionsOf(rends),
		ChunkSeconds: n.chunkSeconds(opts, probe), // chunkplan.go
		CallbackURL:  jo.CallbackURL,
		TTL:          n.cfg.Retention,
		DropSource:   jo.KeepSource != nil && !*jo.KeepSource,
		Priority:     jo.priority,
		Submitter:    src.submitter,
		Subtitles:    subs,
		Warnings:     warnings,
		Publish:      publish,
	}
	if jo.hasTTL {
		job.TTL = jo.ttl
	}
	subHolders := n.copySubtitles(ctx, subs, copied.holders) // subtitles.go
	if err := n.log.Propose(ctx, cluster.OpJobSubmit, cluster.SubmitJob{Job: job, Holders: copied.holders, SubtitleHolders: subHolders}); err != nil {
		// A conflict after a retried forward means an earlier try committed.
		if _, ok := s.Job(job.ID); !ok || !errors.Is(err, cluster.ErrConflict) {
			return cluster.Job{}, fmt.Errorf("submit %s: %w", job.ID, err)
		}
	}
	n.logger.Info("job submitted", "job", job.ID, "name", job.Name, "bytes", ref.Size,
		"duration", probe.Duration, "renditions", len(rends), "copies", copied.holders)
	j, ok := s.Job(job.ID)
	if !ok {
		return cluster.Job{}, fmt.Errorf("submit %s: job vanished after commit", job.ID)
	}
	return j, nil
}

// checkPolicy checks what a job asks of the cluster before its source is
// stored (the callback's address, the publish target, the ladder's size)
// and returns its transcoder options with this node's defaults and its
// publish record.
func (n *Node) checkPolicy(ctx context.Context, jo jobOptions) (transcoder.Options, *cluster.PublishStatus, error) {
	if jo.CallbackURL != "" {
		if err := webhook.CheckURL(ctx, n.webhookAllow, jo.CallbackURL); err != nil {
			return transcoder.Options{}, nil, err
		}
	}
	publish, err := n.publishStatus(jo) // publish.go
	if err != nil {
		return transcoder.Options{}, nil, err
	}
	opts := jo.Options
	if opts.Preset == "" {
		opts.Preset = n.cfg.Preset
	}
	if len(opts.Renditions) > cluster.MaxRenditions {
		return transcoder.Options{}, nil, fmt.Errorf("options: renditions: %d asked for, at most %d per job",
			len(opts.Renditions), cluster.MaxRenditions)
	}
	return opts, publish, nil
}

// storeSource stores an upload's bytes for job id, pinned for owner, and
// copies them to other nodes while they stream in (ack.go). The caller
// aborts the copies (cp.abort) unless it commits the job.
func (n *Node) storeSource(ctx context.Context, id string, body io.Reader, owner *int) (cluster.BlobRef, *copies, error) {
	if f, ok := body.(*os.File); ok {
		// A finished resumable upload: linked into the store, not copied,
		// so that it never needs twice its size on the volume; its bytes
		// are read once to stream the copies.
		cp := n.startCopies(ctx, id, f)
		var ref cluster.BlobRef
		_, err := io.Copy(io.Discard, cp)
		if err == nil {
			ref, err = n.blobs.PutLink(ctx, f.Name(), n.pins.Holder(owner))
		}
		n.metrics.uploadBytes.Add(float64(ref.Size))
		return ref, cp, err
	}
	cp := n.startCopies(ctx, id, countingReader{body, n.metrics})
	ref, err := n.blobs.Put(ctx, cp, n.pins.Holder(owner))
	return ref, cp, err
}

// planSource probes a stored source and plans its ladder: bad media is a
// MediaError, options that cannot apply to it wrap cluster.ErrInvalid.
func (n *Node) planSource(ctx context.Context, path, filename string, opts transcoder.Options) (*transcoder.Probe, []transcoder.Rendition, error) {
	probe, err := n.tc.Probe(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("upload %s: %w", filename, err)
	}
	rends, err := transcoder.Plan(probe, opts)
	if err != nil {
		if transcoder.IsMediaError(err) {
			return nil, nil, err
		}
		return nil, nil, cluster.Invalid(err)
	}
	if len(rends) > cluster.MaxRenditions {
		return nil, nil, cluster.Invalid(fmt.Errorf("options: the ladder has %d renditions, at most %d per job",
			len(rends), cluster.MaxRenditions))
	}
	return probe, rends, nil
}

// newJobID returns 16 random base32 characters: unguessable enough to hand
// out as a playback handle and safe in paths and URLs.
func newJobID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// displayName keeps a client file name for people to read; it never reaches
// the disk.
func displayName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	if name == "." || name == "/" || name == "" {
		name = "upload"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

func (s service) Job(id string) (j cluster.Job, ok bool) {
	s.n.store.FSM().Read(func(st *cluster.State) { j, ok = st.Job(id) })
	return j, ok
}

func (s service) Summary(id string) (j cluster.Job, ok bool) {
	s.n.store.FSM().Read(func(st *cluster.State) {
		var r *cluster.Job
		if r, ok = st.JobRecord(id); ok {
			j = *r
		}
	})
	return j, ok
}

func (s service) List(q cluster.ListQuery) (out []cluster.Job, next string, err error) {
	var page cluster.JobPage
	s.n.store.FSM().Read(func(st *cluster.State) { page, err = st.List(q) })
	for _, r := range page.Jobs { // records are immutable: copied outside the lock
		out = append(out, *r)
	}
	return out, page.Next, err
}

func (s service) Manifest(ctx context.Context, j cluster.Job) (*cluster.Manifest, error) {
	return s.n.manifest(ctx, j)
}

func (s service) ChangesSince(after uint64) ([]string, uint64, bool) {
	return s.n.store.FSM().ChangesSince(after)
}

// Progress weighs the pipeline by what it costs: splitting a little, the
// chunk encodes most (by media duration, including the running fraction of
// chunks in flight here), packaging the rest.
func (s service) Progress(id string) float64 {
	var remote map[string]float64
	if j, ok := s.Summary(id); ok && j.State == cluster.JobTranscoding {
		remote = s.n.leaderProgress(id) // asked before taking the FSM lock
	} else if ok && j.State == cluster.JobIngesting {
		return s.n.ingestProgress(j) // ingest.go
	}
	var p float64
	s.n.store.FSM().Read(func(st *cluster.State) {
		j, ok := st.JobRecord(id)
		if !ok {
			return
		}
		switch j.State {
		case cluster.JobDone:
			p = 1
			return
		case cluster.JobQueued, cluster.JobSplitting:
			p = 0
			return
		}
		const split, encode = 0.05, 0.85
		var total, done float64
		for _, c := range st.Chunks(j.ID) {
			total += c.Duration
			if len(c.Outputs) > 0 {
				done += c.Duration
			} else {
				id := cluster.TaskID(j.ID, cluster.TaskEncode, c.Index)
				// This node's own run, or what heartbeats report (to the
				// leader; a follower asked it).
				done += c.Duration * max(s.n.worker.progressOf(id), s.n.sched.Progress(id), remote[id])
			}
		}
		p = split
		if total > 0 {
			p += encode * done / total
		}
		if j.State == cluster.JobPackaging {
			p = split + encode
		}
	})
	return min(p, 1)
}

// Cancel stops a running job; a finished job is deleted with its media.
func (s service) Cancel(ctx context.Context, id string) error {
	j, ok := s.Summary(id)
	if !ok {
		return fmt.Errorf("job %s: %w", id, cluster.ErrNotFound)
	}
	if j.State.Terminal() {
		return s.n.log.Propose(ctx, cluster.OpJobDelete, cluster.JobRef{JobID: id})
	}
	err := s.n.log.Propose(ctx, cluster.OpJobCancel, cluster.JobRef{JobID: id})
	if errors.Is(err, cluster.ErrConflict) {
		// It finished between the read and the cancel: delete it instead.
		return s.n.log.Propose(ctx, cluster.OpJobDelete, cluster.JobRef{JobID: id})
	}
	return err
}

func (s service) Changed() <-chan struct{} { return s.n.store.FSM().Changed() }

func (s service) OpenBlob(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error) {
	return s.n.openBlob(ctx, ref, set)
}

// Ready is nil when the node has a leader to commit to and is not stopping.
func (s service) Ready() error {
	if s.n.stopping.Load() {
		return errors.New("shutting down")
	}
	if !s.n.joined.Load() {
		return errors.New("not in a cluster yet")
	}
	if id, _ := s.n.store.Leader(); id == "" {
		return errors.New("no raft leader")
	}
	return nil
}

func (s service) Status() httpapi.ClusterStatus {
	n := s.n
	leaderID, _ := n.store.Leader()
	suffrage := map[string]string{}
	var names map[string]string
	n.store.FSM().Read(func(st *cluster.State) { names = st.Nodes() })
	var rafts []httpapi.RaftServer
	if servers, err := n.store.Configuration(); err == nil {
		for _, srv := range servers {
			suffrage[string(srv.ID)] = srv.Suffrage.String()
			rs := httpapi.RaftServer{ID: string(srv.ID), Name: names[string(srv.ID)], Address: string(srv.Address),
				Suffrage: strings.ToLower(srv.Suffrage.String())}
			if m, ok := n.members.ByID(rs.ID); ok {
				rs.Name = m.Name
			}
			rafts = append(rafts, rs)
		}
	}
	active := map[string]int{}
	n.store.FSM().Read(func(st *cluster.State) {
		st.Tasks(func(t *cluster.Task) bool {
			if t.State == cluster.TaskAssigned {
				active[t.Node]++
			}
			return true
		})
	})
	out := httpapi.ClusterStatus{Node: n.cfg.Name, Term: n.store.Term(), Raft: rafts, LogVersion: n.store.FSM().LogVersion(),
		Insecure: n.insecure}
	if q, err := n.promote.Health(); err == nil {
		out.Quorum = httpapi.QuorumStatus{Voters: q.Voters, HealthyVoters: q.Healthy, Needed: q.Needed, FailureTolerance: q.FailureTolerance}
	}
	for _, m := range n.members.Members() {
		ms := httpapi.MemberStatus{
			Name: m.Name, ID: m.Meta.ID, State: string(m.State), Leaving: m.Meta.Leaving,
			Slots: m.Meta.Slots, TaskQueue: m.Meta.Queue, TasksActive: active[m.Name], Version: m.Meta.Version,
			Since: m.Since, HTTP: m.Meta.HTTP, RaftRole: "none",
		}
		if d := m.Meta.Disk; d != nil {
			ms.Disk = &httpapi.DiskStatus{FreeBytes: d.FreeMiB << 20, SizeBytes: d.SizeMiB << 20, ReserveBytes: d.ReserveMiB << 20, Full: d.Full}
		}
		switch suffrage[m.Meta.ID] {
		case "Voter":
			ms.Voter, ms.RaftRole = true, "follower"
		case "Nonvoter":
			ms.RaftRole = "nonvoter"
		}
		if m.Meta.ID != "" && m.Meta.ID == leaderID {
			ms.RaftRole = "leader"
			out.Leader = m.Name
		}
		out.Members = append(out.Members, ms)
	}
	return out
}

// countingReader counts upload bytes as they stream in.
type countingReader struct {
	r io.Reader
	m *metrics
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.uploadBytes.Add(float64(n))
	return n, err
}

// Fragments remuxes a blob to fragmented MP4 for the live view (httpapi.Live),
// pulling it here first when this node holds no copy.
func (s service) Fragments(ctx context.Context, ref cluster.BlobRef, fragSeconds, mediaSeconds float64) (*transcoder.Fragmented, error) {
	p, _, err := s.n.fetch(ctx, ref, peerproto.ReasonServe)
	if err != nil {
		return nil, err
	}
	return s.n.tc.Fragment(ctx, p, fragSeconds, mediaSeconds)
}
