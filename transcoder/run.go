package transcoder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosty/gosty/transcoder/confine"
)

// Config tells New where the tools are and how to run them.
type Config struct {
	FFmpeg  string // "" = look up "ffmpeg" on PATH
	FFprobe string // "" = look up "ffprobe" on PATH
	Logger  *slog.Logger
	Threads int // 0 = ffmpeg default; otherwise passed as -threads to encoders
	// MaxFileBytes makes Probe refuse larger files (0 = no limit here; the
	// node sets it to its upload limit).
	MaxFileBytes int64
	// Unconfined runs ffmpeg and ffprobe directly, without the Landlock
	// and seccomp wrapper (package confine). For debugging only: the zero
	// value confines every run.
	Unconfined bool
}

// Transcoder runs ffmpeg/ffprobe. It holds no per-job state, so one value is
// safe for concurrent use by many tasks.
type Transcoder struct {
	ffmpeg  string
	ffprobe string
	log     *slog.Logger
	threads int

	maxFileBytes int64
	probeTimeout time.Duration // probeDeadline; tests shorten it
	confined     bool
}

// stderrTailBytes bounds how much of a child's stderr we keep: enough for the
// last few error lines, never a multi-megabyte log of a long encode.
const stderrTailBytes = 8 << 10

// New resolves both binaries and runs each with -version so that a node with
// a missing or broken ffmpeg fails at start-up rather than on its first task.
func New(cfg Config) (*Transcoder, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	t := &Transcoder{log: log.With("component", "transcoder"), threads: cfg.Threads, maxFileBytes: cfg.MaxFileBytes, probeTimeout: probeDeadline, confined: !cfg.Unconfined}
	var err error
	if t.ffmpeg, err = lookTool(cfg.FFmpeg, "ffmpeg"); err != nil {
		return nil, err
	}
	if t.ffprobe, err = lookTool(cfg.FFprobe, "ffprobe"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, bin := range []string{t.ffmpeg, t.ffprobe} {
		var out bytes.Buffer
		if err := t.run(ctx, versionDeadline, bin, []string{"-hide_banner", "-version"}, &out, confine.Policy{}); err != nil {
			return nil, fmt.Errorf("transcoder: %s does not run: %w", bin, err)
		}
		first, _, _ := strings.Cut(out.String(), "\n")
		t.log.Debug("tool found", "path", bin, "version", first)
	}
	t.logConfinement()
	return t, nil
}

// logConfinement says once, at start, what the kernel confines the tools
// with (the -version runs above went through the wrapper already).
func (t *Transcoder) logConfinement() {
	if !t.confined {
		t.log.Warn("media tools run unconfined (--confine-media=false): ffmpeg can read everything this process can and open network sockets")
		return
	}
	st := confine.Check()
	if st.ABI == 0 {
		t.log.Warn("Landlock is not available; ffmpeg and ffprobe run without file and TCP confinement", "err", st.Err, "enforced", st.Enforced())
		return
	}
	t.log.Info("media tools confined", "landlock_abi", st.ABI, "enforced", st.Enforced())
}

func lookTool(configured, name string) (string, error) {
	p := configured
	if p == "" {
		p = name
	}
	abs, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("transcoder: %s not found (configured %q): %w", name, configured, err)
	}
	return abs, nil
}

// ffmpegBase starts every ffmpeg command line: never read stdin (a child that
// waits on a terminal hangs a worker), and keep stderr to real errors so the
// tail we keep is the useful part.
func ffmpegBase() []string {
	return []string{"-nostdin", "-hide_banner", "-loglevel", "error"}
}

// run starts bin in its own process group and waits for it, for at most
// limit (see deadlines.go; a limit <= 0 means DefaultStepTimeout). When ctx
// is canceled or the deadline passes, the whole group is SIGKILLed: ffmpeg
// may fork helpers, and killing only the leader would leave them writing
// into directories we are about to delete. stdout goes to the given writer
// (nil = discarded). The returned error carries the tail of stderr; when
// ctx ended the run it wraps ctx.Err(), and when the deadline did it is a
// *DeadlineError (which wraps context.DeadlineExceeded).
//
// The child runs confined to access (package confine): it reads only the
// files named there and the system's, writes only below access.Write,
// opens no socket. When the wrapper itself fails (it could not confine or
// start the tool), the error is a *ConfineError, never a media problem.
func (t *Transcoder) run(ctx context.Context, limit time.Duration, bin string, args []string, stdout io.Writer, access confine.Policy) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if limit <= 0 {
		limit = DefaultStepTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tail := &ringBuffer{max: stderrTailBytes}
	cmd := exec.Command(bin, args...)
	if t.confined {
		var err error
		if cmd, err = confine.Command(access, bin, args...); err != nil {
			return &ConfineError{Tool: baseName(bin), Err: err}
		}
		defer confine.Close(cmd)
	}
	cmd.Stdout = stdout
	cmd.Stderr = tail
	// Pdeathsig: if the node itself dies (SIGKILL, OOM), the kernel kills
	// its ffmpegs too instead of leaving them running for nobody. It fires
	// when the forking OS thread exits; Go only retires a thread that a
	// goroutine left locked, which nothing in gosty does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild holding the pipes open must not keep Wait blocked after
	// the kill.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	t.log.Debug("exec", "cmd", bin, "args", args, "deadline", limit)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	confine.Close(cmd)
	pid := cmd.Process.Pid
	done := make(chan struct{})
	var killed bool
	var mu sync.Mutex
	go func() {
		select {
		case <-runCtx.Done():
			mu.Lock()
			killed = true
			mu.Unlock()
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	mu.Lock()
	wasKilled := killed
	mu.Unlock()
	t.log.Debug("exec done", "cmd", bin, "pid", pid, "elapsed", time.Since(start), "err", err)
	if wasKilled {
		if ctx.Err() != nil {
			return fmt.Errorf("%s killed: %w", baseName(bin), ctx.Err())
		}
		t.log.Warn("child ran past its deadline; killed its process group", "cmd", baseName(bin), "pid", pid, "deadline", limit)
		return &DeadlineError{Tool: baseName(bin), Limit: limit}
	}
	if err != nil {
		msg := strings.TrimSpace(tail.String())
		var ee *exec.ExitError
		if t.confined && errors.As(err, &ee) && ee.ExitCode() == confine.ExitSetup && strings.HasPrefix(msg, confine.StderrPrefix) {
			return &ConfineError{Tool: baseName(bin), Err: errors.New(strings.TrimPrefix(msg, confine.StderrPrefix))}
		}
		if msg == "" {
			return fmt.Errorf("%s: %w", baseName(bin), err)
		}
		return &toolError{tool: baseName(bin), err: err, stderr: msg}
	}
	return nil
}

// DeadlineError says a child process ran past its deadline and was killed
// with its process group. It is not a MediaError: a loaded node can be slow,
// so the task is retried (up to the attempt limit) like other failures.
type DeadlineError struct {
	Tool  string
	Limit time.Duration
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("%s ran past its deadline of %s and was killed", e.Tool, e.Limit)
}

func (e *DeadlineError) Unwrap() error { return context.DeadlineExceeded }

// ConfineError says the confinement wrapper could not confine or start a
// tool: a problem of this node (a missing binary, a path that vanished),
// not of the media, so it is retried like other failures.
type ConfineError struct {
	Tool string
	Err  error
}

func (e *ConfineError) Error() string { return fmt.Sprintf("%s: confine: %v", e.Tool, e.Err) }
func (e *ConfineError) Unwrap() error { return e.Err }

// toolError keeps the stderr tail separate so that Probe can turn it into a
// readable MediaError reason.
type toolError struct {
	tool   string
	err    error
	stderr string
}

func (e *toolError) Error() string { return fmt.Sprintf("%s: %v: %s", e.tool, e.err, e.stderr) }
func (e *toolError) Unwrap() error { return e.err }

func stderrOf(err error) string {
	var te *toolError
	if errors.As(err, &te) {
		return te.stderr
	}
	return ""
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// ringBuffer keeps the last max bytes written to it.
type ringBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (r *ringBuffer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	if len(p) >= r.max {
		r.buf = append(r.buf[:0], p[len(p)-r.max:]...)
		return n, nil
	}
	if over := len(r.buf) + len(p) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, p...)
	return n, nil
}

func (r *ringBuffer) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// progressWriter parses ffmpeg's `-progress pipe:1` key=value lines and
// reports out_time as a fraction of the expected duration.
type progressWriter struct {
	total   float64
	fn      Progress
	partial []byte
	last    float64
}

func newProgressWriter(total float64, fn Progress) io.Writer {
	if fn == nil {
		return io.Discard
	}
	return &progressWriter{total: total, fn: fn, last: -1}
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(strings.TrimSpace(string(w.partial[:i])))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *progressWriter) line(l string) {
	k, v, ok := strings.Cut(l, "=")
	if !ok {
		return
	}
	var frac float64
	switch k {
	// out_time_ms is in microseconds too (a long-standing ffmpeg quirk), so
	// both keys are read the same way.
	case "out_time_us", "out_time_ms":
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || w.total <= 0 {
			return
		}
		frac = float64(us) / 1e6 / w.total
	case "progress":
		if v != "end" {
			return
		}
		frac = 1
	default:
		return
	}
	// Callers drive progress bars and ETAs: report only forward movement
	// (ffmpeg can print a negative out_time before the first frame).
	frac = min(max(frac, 0), 1)
	if frac <= w.last {
		return
	}
	w.last = frac
	w.fn(frac)
}

// fsyncFile makes a finished output durable before it is renamed into place,
// so a crash cannot leave a complete-looking name over partial bytes.
func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func fsyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func fmtSec(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }
