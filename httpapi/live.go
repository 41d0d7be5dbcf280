package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// Play while encoding. While a job transcodes, files/live/ serves an HLS
// view generated on request from the replicated job state:
//
//	live/master.m3u8        master; variants and CODECS as the final one
//	live/media_<i>.m3u8     EVENT media playlist of video rendition i, or
//	                        of the audio when i = len(renditions)
//	live/init-<i>.m4s       init segment of rendition i (or the audio)
//	live/seg-<i>-<k>.m4s    video: encoded chunk k of rendition i, one
//	                        segment; audio: the k-th ~2 s audio fragment
//
// A video segment is an encoded chunk remuxed by stream copy to fragmented
// MP4 (nothing is encoded twice) with its decode times moved to the chunk's
// place in the job, so every segment of a rendition plays behind the init
// of chunk 0. The media playlists list the contiguous prefix of encoded
// chunks (chunks 0..k-1 all done); a chunk finished out of order shows up
// once the ones before it are done, so a playlist only ever grows at its
// end. A source with audio is live only once the audio task is done (it
// encodes the whole track at once): the view never offers video without
// its sound. While packaging, the live view lists every chunk, still
// without ENDLIST. Once the job is done the live playlist URLs redirect
// (302, query kept) to the final VOD playlists; the live segments are gone
// then (the chunks they came from are collected).
//
// The live view depends on job state only: any node serves it, pulling a
// chunk it does not hold from a holder (counted as transfer reason
// "serve"). Remuxed fragments are cached in memory by blob hash.

// Live remuxes a blob (an encoded chunk's rendition or a job's audio) to
// fragmented MP4 for the live view, fetching it from a holder when this
// node has no copy.
type Live interface {
	Fragments(ctx context.Context, ref cluster.BlobRef, fragSeconds, mediaSeconds float64) (*transcoder.Fragmented, error)
}

const liveDir = "live/"

// defaultLiveCacheBytes bounds the remuxed fragments kept in memory.
const defaultLiveCacheBytes = 256 << 20

var (
	liveMediaRe = regexp.MustCompile(`^media_([0-9]{1,3})\.m3u8$`)
	liveInitRe  = regexp.MustCompile(`^init-([0-9]{1,3})\.m4s$`)
	liveSegRe   = regexp.MustCompile(`^seg-([0-9]{1,3})-([0-9]{1,6})\.m4s$`)
)

// LiveStatus is what the live view of a job offers now.
type LiveStatus struct {
	Ready    bool    // playable: chunk 0 encoded and the audio (if any) done
	Segments int     // chunks in the contiguous encoded prefix
	Seconds  float64 // their duration
	Complete bool    // every chunk encoded
}

// LiveStatusOf reports the live view of j. A finished job is ready with
// every chunk; a failed or canceled one is not.
func LiveStatusOf(j cluster.Job) LiveStatus {
	var s LiveStatus
	switch j.State {
	case cluster.JobTranscoding, cluster.JobPackaging:
	case cluster.JobDone:
		if j.Compact() {
			s.Ready, s.Complete, s.Segments = true, true, j.ChunkCount
			s.Seconds = j.Source.Duration
			if j.Source.Video != nil && j.Source.Video.Duration > 0 {
				s.Seconds = j.Source.Video.Duration
			}
			return s
		}
	default:
		return s
	}
	for _, c := range j.Chunks {
		if len(c.Outputs) != len(j.Renditions) {
			break
		}
		s.Segments++
		s.Seconds += c.Duration
	}
	s.Complete = len(j.Chunks) > 0 && s.Segments == len(j.Chunks)
	audioReady := j.Source.Audio == nil || !j.Audio.IsZero()
	s.Ready = j.State == cluster.JobDone || (s.Segments > 0 && audioReady && len(j.Renditions) > 0)
	return s
}

// serveLive answers files/live/<name> for job j.
func (a *API) serveLive(c *gin.Context, j cluster.Job, name, query string, exp int64) {
	if a.live == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such file")
		return
	}
	if j.State == cluster.JobDone {
		a.redirectLiveDone(c, j, name, query)
		return
	}
	if j.State.Terminal() {
		writeErrorCode(c, http.StatusNotFound, "not_found", "the job is "+string(j.State)+": there is nothing to play")
		return
	}
	st := LiveStatusOf(j)
	if !st.Ready {
		writeErrorCode(c, http.StatusNotFound, "not_ready", "live playback of this job is not ready yet")
		return
	}
	body, etag, err := a.liveBody(c, j, name, st)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if body == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such file")
		return
	}
	a.writeLive(c, name, query, exp, body, etag)
}

// redirectLiveDone sends a live URL of a finished job to the final VOD
// playlist or segment that takes over, at its own path.
func (a *API) redirectLiveDone(c *gin.Context, j cluster.Job, name, query string) {
	target := ""
	switch {
	case name == "master.m3u8" && j.HLS != "":
		target = j.HLS
	case liveMediaRe.MatchString(name):
		if _, ok, _ := a.outputFile(c, j, name); ok {
			target = name
		}
	}
	if target == "" {
		writeErrorCode(c, http.StatusNotFound, "not_found", "the job is done: its live segments are gone, play the final output")
		return
	}
	loc := "../" + target
	if query != "" {
		loc += "?" + query
	}
	setLiveCache(c, a.playback != nil)
	c.Redirect(http.StatusFound, loc)
}

// liveBody builds the live file name of a running job: a playlist, an init
// section or a segment, with the ETag of the blob it comes from (none for
// playlists). A nil body with no error is a name that does not exist.
func (a *API) liveBody(c *gin.Context, j cluster.Job, name string, st LiveStatus) (body []byte, etag string, err error) {
	n := len(j.Renditions)
	switch {
	case name == "master.m3u8":
		body, err = a.live.master(c.Request.Context(), j)
	case liveMediaRe.MatchString(name):
		i, _ := strconv.Atoi(liveMediaRe.FindStringSubmatch(name)[1])
		if i > n || (i == n && j.Audio.IsZero()) {
			break
		}
		body, err = a.live.media(c.Request.Context(), j, i, st)
	case liveInitRe.MatchString(name):
		i, _ := strconv.Atoi(liveInitRe.FindStringSubmatch(name)[1])
		var f *transcoder.Fragmented
		if f, err = a.live.track(c.Request.Context(), j, i, 0); f != nil {
			body = f.Init
			if i < n {
				etag = j.Chunks[0].Outputs[i].Hash + "-init"
			} else {
				etag = j.Audio.Hash + "-init"
			}
		}
	case liveSegRe.MatchString(name):
		m := liveSegRe.FindStringSubmatch(name)
		i, _ := strconv.Atoi(m[1])
		k, _ := strconv.Atoi(m[2])
		body, etag, err = a.live.segment(c.Request.Context(), j, i, k, st)
	}
	return body, etag, err
}

// writeLive writes a live file: playlists signed when the request was,
// revalidated against the ETag.
func (a *API) writeLive(c *gin.Context, name, query string, exp int64, body []byte, etag string) {
	playlist := isPlaylist(name)
	if playlist && query != "" {
		body = signHLS(body, query)
	}
	h := c.Writer.Header()
	h.Set("Content-Type", contentTypeOf(name))
	h.Set("X-Content-Type-Options", "nosniff")
	if etag != "" {
		// A rewound chunk is encoded again into a new blob: the segment at
		// the same URL changes, so caches revalidate against the blob hash.
		h.Set("ETag", `"`+etag+`"`)
	}
	if a.playback != nil && etag != "" && query != "" {
		h.Set("ETag", `"`+etag+"-"+strconv.FormatInt(exp, 10)+`"`)
	}
	setLiveCache(c, a.playback != nil)
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(body))
}

// setLiveCache: live playlists change and live segments may (a rewind), so
// everything live is revalidated; signed responses stay private.
func setLiveCache(c *gin.Context, signed bool) {
	if signed {
		c.Writer.Header().Set("Cache-Control", "private, no-cache")
	} else {
		c.Writer.Header().Set("Cache-Control", cacheRevalidate)
	}
}

// liveView generates the live playlists and segments, with a cache of
// remuxed blobs.
type liveView struct {
	src   Live
	cache *fragCache
	// remuxes bounds the ffmpeg remuxes running at once for viewers.
	remuxes chan struct{}
}

// maxLiveRemuxes is how many remuxes a node runs at once for the live view.
const maxLiveRemuxes = 4

func newLiveView(src Live, maxBytes int64) *liveView {
	return &liveView{src: src, cache: &fragCache{max: maxBytes, m: map[string]*fragEntry{}},
		remuxes: make(chan struct{}, maxLiveRemuxes)}
}

// fragments remuxes one blob, waiting for a free remux slot.
func (l *liveView) fragments(ctx context.Context, ref cluster.BlobRef, fragSeconds, mediaSeconds float64) (*transcoder.Fragmented, error) {
	select {
	case l.remuxes <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.remuxes }()
	return l.src.Fragments(ctx, ref, fragSeconds, mediaSeconds)
}

// track returns rendition i of chunk k remuxed, or the job's audio when
// i = len(renditions) (k ignored). nil, nil when there is no such thing yet.
func (l *liveView) track(ctx context.Context, j cluster.Job, i, k int) (*transcoder.Fragmented, error) {
	n := len(j.Renditions)
	switch {
	case i < n:
		if k >= len(j.Chunks) || len(j.Chunks[k].Outputs) != n {
			return nil, nil
		}
		c := j.Chunks[k]
		return l.cache.get(ctx, c.Outputs[i].Hash, func(ctx context.Context) (*transcoder.Fragmented, error) {
			return l.fragments(ctx, c.Outputs[i], 0, c.Duration)
		})
	case i == n && !j.Audio.IsZero():
		return l.cache.get(ctx, j.Audio.Hash, func(ctx context.Context) (*transcoder.Fragmented, error) {
			return l.fragments(ctx, j.Audio, transcoder.DefaultSegmentSeconds, j.Source.Duration)
		})
	}
	return nil, nil
}

// master writes the live master playlist with the same writer as the final
// package, the codecs read from each rendition's init segment.
func (l *liveView) master(ctx context.Context, j cluster.Job) ([]byte, error) {
	n := len(j.Renditions)
	vs := make([]transcoder.Variant, n)
	fr := 0.0
	if j.Source.Video != nil {
		fr = j.Source.Video.FrameRate
	}
	for i, r := range j.Renditions {
		f, err := l.track(ctx, j, i, 0)
		if err != nil {
			return nil, err
		}
		codec := ""
		if f != nil {
			codec = f.Codec()
		}
		if codec == "" {
			return nil, fmt.Errorf("live %s: no codec for rendition %s", j.ID, r.Name)
		}
		vs[i] = transcoder.Variant{Rendition: cluster.TranscoderRenditions([]cluster.Rendition{r})[0], Codecs: codec, Bandwidth: int64(float64(r.Bitrate) * 1.07),
			FrameRate: fr, URI: fmt.Sprintf("media_%d.m3u8", i), VideoRange: transcoder.HLSVideoRange(r.Range)}
	}
	m := transcoder.Master{Variants: vs}
	if !j.Audio.IsZero() {
		codec := "mp4a.40.2"
		if f, err := l.track(ctx, j, n, 0); err != nil {
			return nil, err
		} else if f != nil && f.Codec() != "" {
			codec = f.Codec()
		}
		m.Audio = []transcoder.AudioVariant{liveAudio(j, transcoder.AudioVariant{Codecs: codec, Bandwidth: transcoder.DefaultAudioBitrate, URI: fmt.Sprintf("media_%d.m3u8", n), Default: true})}
	}
	return transcoder.MasterPlaylist(m), nil
}

// maxChunkSeconds is the longest chunk of j: the playlists' target
// duration, fixed from the split on.
func maxChunkSeconds(j cluster.Job) float64 {
	t := transcoder.DefaultSegmentSeconds
	for _, c := range j.Chunks {
		t = max(t, c.Duration)
	}
	return t
}

// media writes the EVENT playlist of rendition i (or the audio).
func (l *liveView) media(ctx context.Context, j cluster.Job, i int, st LiveStatus) ([]byte, error) {
	n := len(j.Renditions)
	var segs []transcoder.LiveSegment
	if i < n {
		for k := range st.Segments {
			segs = append(segs, transcoder.LiveSegment{Duration: j.Chunks[k].Duration, URI: fmt.Sprintf("seg-%d-%d.m4s", i, k)})
		}
	} else {
		f, err := l.track(ctx, j, n, 0)
		if err != nil || f == nil {
			return nil, err
		}
		for k, fr := range audioFragments(f, st) {
			segs = append(segs, transcoder.LiveSegment{Duration: float64(fr.Duration) / float64(f.Timescale), URI: fmt.Sprintf("seg-%d-%d.m4s", i, k)})
		}
	}
	return transcoder.EventPlaylist(fmt.Sprintf("init-%d.m4s", i), maxChunkSeconds(j), segs, false), nil
}

// audioFragments are the audio fragments the live view lists: those that
// start before the encoded video prefix ends (all of them once every chunk
// is encoded).
func audioFragments(f *transcoder.Fragmented, st LiveStatus) []transcoder.Fragment {
	if st.Complete {
		return f.Fragments
	}
	end := f.Ticks(st.Seconds)
	k := 0
	for k < len(f.Fragments) && f.Fragments[k].Start < end {
		k++
	}
	return f.Fragments[:k]
}

// segment returns live segment k of rendition i (or the audio) and its
// validator.
func (l *liveView) segment(ctx context.Context, j cluster.Job, i, k int, st LiveStatus) ([]byte, string, error) {
	n := len(j.Renditions)
	if i < n {
		if k >= st.Segments {
			return nil, "", nil
		}
		f, err := l.track(ctx, j, i, k)
		if err != nil || f == nil {
			return nil, "", err
		}
		shift := f.Ticks(j.Chunks[k].Start - j.Chunks[0].Start)
		b, err := f.Media(shift)
		if err != nil {
			return nil, "", fmt.Errorf("live %s chunk %d: %w", j.ID, k, err)
		}
		return b, j.Chunks[k].Outputs[i].Hash + "-" + strconv.FormatInt(shift, 10), nil
	}
	f, err := l.track(ctx, j, i, 0)
	if err != nil || f == nil {
		return nil, "", err
	}
	frs := audioFragments(f, st)
	if k >= len(frs) {
		return nil, "", nil
	}
	return frs[k].Data, j.Audio.Hash + "-" + strconv.Itoa(k), nil
}

// fragCache keeps remuxed blobs by hash, least recently used out first,
// and runs one remux per hash at a time.
type fragCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	clock int64
	m     map[string]*fragEntry
}

type fragEntry struct {
	ready chan struct{}
	f     *transcoder.Fragmented
	err   error
	size  int64
	used  int64
}

func (c *fragCache) get(ctx context.Context, key string, load func(context.Context) (*transcoder.Fragmented, error)) (*transcoder.Fragmented, error) {
	c.mu.Lock()
	c.clock++
	e, ok := c.m[key]
	if ok {
		e.used = c.clock
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return e.f, e.err
	}
	e = &fragEntry{ready: make(chan struct{}), used: c.clock}
	c.m[key] = e
	c.mu.Unlock()

	// The remux outlives the request that started it: others may be
	// waiting for it.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	e.f, e.err = load(lctx)
	cancel()
	close(e.ready)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil {
		delete(c.m, key) // try again next time
		return nil, e.err
	}
	e.size = int64(len(e.f.Init))
	for _, fr := range e.f.Fragments {
		e.size += int64(len(fr.Data))
	}
	c.size += e.size
	for c.size > c.max && len(c.m) > 1 {
		var oldest string
		var at int64 = math.MaxInt64
		for k, v := range c.m {
			if k != key && v.size > 0 && v.used < at {
				oldest, at = k, v.used
			}
		}
		if oldest == "" {
			break
		}
		c.size -= c.m[oldest].size
		delete(c.m, oldest)
	}
	return e.f, nil
}
