package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/httpapi/ui"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// chromiumOrSkip returns Debian's Chromium, or skips the test when it (or
// the built UI) is missing, unless GOSTY_REQUIRE_CHROMIUM=1 (CI) makes that
// a failure.
func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("GOSTY_REQUIRE_CHROMIUM") == "1" {
			t.Fatal(why + " (GOSTY_REQUIRE_CHROMIUM=1)")
		}
		t.Skip(why)
	}
	if _, err := fs.Stat(ui.FS(), "index.html"); err != nil {
		missing("the web UI is not built into this test binary: run `make ui` first")
	}
	for _, p := range []string{os.Getenv("GOSTY_CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	missing("chromium is not installed (Debian: apt-get install chromium)")
	return ""
}

// artifactDir is where the UI test leaves its screenshots: $GOSTY_ARTIFACTS,
// or testdata/artifacts (ignored by git) next to this file.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GOSTY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// browserLog keeps what the page printed and threw, shown when the test
// fails.
type browserLog struct {
	mu    sync.Mutex
	lines []string
}

func (b *browserLog) add(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, s)
}

func (b *browserLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// newBrowser starts headless Chromium with a fresh profile and returns a
// tab's context. The browser is killed when the test ends.
func newBrowser(t *testing.T, chrome string) (context.Context, *browserLog) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true), // only loopback is talked to
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit, before TempDir cleanup
	})
	// Start the browser now, with no deadline on this first call: a timeout
	// here would stop the whole browser later.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	log := &browserLog{}
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			log.add(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			log.add(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser log:\n%s", log)
		}
	})
	return ctx, log
}

// eval runs a JavaScript expression in the page with a bounded wait.
func eval[T any](ctx context.Context, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(cctx, chromedp.Evaluate[T](expr, opts...))
}

// uiPlaySecond plays the job page's player (muted) and waits until its
// clock has moved by a second.
func uiPlaySecond(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := eval[chromedp.Void](ctx, `document.getElementById('player').play()`, chromedp.EvalAwaitPromise); err != nil {
		t.Fatalf("play(): %v", err)
	}
	var t0 float64
	waitJS(t, ctx, 60*time.Second, "playback to advance by a second",
		`String(document.getElementById('player').currentTime)`,
		func(v string) (bool, error) {
			var cur float64
			fmt.Sscan(v, &cur)
			if t0 == 0 {
				t0 = max(cur, 1e-9)
			}
			return cur >= t0+1, nil
		})
}

// waitJS polls expr (which yields a string) until done accepts its value,
// failing the test after d or when done reports a failure.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string, done func(string) (bool, error)) string {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	var lastErr error
	for {
		v, err := eval[string](ctx, expr)
		if err == nil {
			last = v
			ok, ferr := done(v)
			if ferr != nil {
				t.Fatalf("waiting for %s: %v", what, ferr)
			}
			if ok {
				return v
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last value %q, last error %v)", d, what, last, lastErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func saveScreenshot(t *testing.T, ctx context.Context, dir, name string, full bool) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		png []byte
		err error
	)
	if full {
		png, err = chromedp.Run(cctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(cctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestUI drives the web UI in headless Chromium against a two-node
// cluster: it uploads a clip through the page, watches the job reach done
// in the live list without a reload, opens the job page, and plays the
// HLS output with hls.js, checking that playback advances and that more
// than one rendition is offered. Screenshots go to artifactDir.
func TestUI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes, ffmpeg and a browser")
	}
	chrome := chromiumOrSkip(t)
	start := time.Now()

	c := e2e.FastCluster(t, 50, 2, "--slots", "1", "--preset", "ultrafast")
	c.StartAll(t, 2)
	src := filepath.Join(t.TempDir(), "ui-clip.mp4")
	// An English subtitle stream (mov_text) for the player's subtitle menu.
	srt := filepath.Join(t.TempDir(), "ui-clip.srt")
	if err := os.WriteFile(srt, []byte("1\n00:00:00,500 --> 00:00:07,500\nHello from the subtitles\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=8",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=8", "-i", srt, "-map", "0:v", "-map", "1:a", "-map", "2:s",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng", "-t", "8")
	c.Agree(t, []int{0, 1}, 2, 2)
	base := c.HTTP(0)

	ctx, blog := newBrowser(t, chrome)
	// H.264 and AAC through Media Source are what the player needs; a
	// Chromium built without them cannot pass the rest.
	if ok, err := eval[bool](ctx, `MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"') && MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"')`); err != nil || !ok {
		t.Fatalf("this Chromium cannot play H.264/AAC through Media Source (supported=%v, err=%v)", ok, err)
	}

	dir := artifactDir(t)
	nav, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := chromedp.Do(nav, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.ID("file-input")),
		chromedp.WaitVisible(chromedp.CSS("#job-list")))
	cancel()
	if err != nil {
		t.Fatalf("loading %s/: %v", base, err)
	}
	// Connected to the job list stream (its "jobs" snapshot arrived).
	waitJS(t, ctx, 20*time.Second, "the live job list", `document.querySelector('.empty').textContent`,
		func(v string) (bool, error) { return strings.HasPrefix(v, "No jobs yet"), nil })
	// A mark that a reload would wipe out, and a record of anything the
	// page's Content-Security-Policy blocks (the player's worker, say).
	if _, err := eval[chromedp.Void](ctx, `window.__gostyNoReload = 'still here';
		window.__csp = [];
		document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`); err != nil {
		t.Fatal(err)
	}

	// A file that is not a video is refused with the server's reason, in
	// its row and in the banner.
	bad := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(bad, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(up, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{bad}))
	cancel()
	if err != nil {
		t.Fatalf("choosing the bad file: %v", err)
	}
	msg := waitJS(t, ctx, 30*time.Second, "the bad upload to be refused",
		`(() => { const r = document.querySelector('.upload-row[data-file="notes.txt"]'); return r && r.dataset.state === 'failed' ? document.getElementById('banner').hidden + '|' + document.getElementById('banner-text').textContent : ''; })()`,
		func(v string) (bool, error) { return v != "", nil })
	t.Logf("bad upload: %s", msg)
	if !strings.HasPrefix(msg, "false|Upload of notes.txt failed: ") || len(msg) < len("false|Upload of notes.txt failed: ")+10 {
		t.Fatalf("no clear message for a bad upload: %q", msg)
	}
	if _, err := eval[chromedp.Void](ctx, `document.getElementById('banner-close').click()`); err != nil {
		t.Fatal(err)
	}

	// Upload through the page: 2 s chunks, so both nodes get some; capped
	// CRF and the first audio track chosen in the form.
	up, cancel = context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(up, chromedp.SetValue(chromedp.ID("chunk-seconds"), "2"),
		chromedp.SetValue(chromedp.ID("rate-control"), "capped_crf"), chromedp.SetValue(chromedp.ID("audio-tracks"), "first"),
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src}))
	cancel()
	if err != nil {
		t.Fatalf("choosing the file: %v", err)
	}
	waitJS(t, ctx, 60*time.Second, "the upload to finish",
		`(() => { const r = document.querySelector('.upload-row[data-file="ui-clip.mp4"]'); return r ? r.dataset.state + ': ' + r.querySelector('.status').textContent : 'none'; })()`,
		func(v string) (bool, error) {
			if strings.HasPrefix(v, "failed") {
				return false, fmt.Errorf("upload %s", v)
			}
			return strings.HasPrefix(v, "done"), nil
		})

	// The job row follows the job through its states, with no reload.
	row := `document.querySelector('.job-row[data-job-name="ui-clip.mp4"]')`
	seen := map[string]bool{}
	var order []string
	waitJS(t, ctx, 3*time.Minute, "the job to be done in the list",
		`(() => { const r = `+row+`; if (!r) return 'absent'; const e = r.querySelector('.job-error'); return r.dataset.state + (e ? ': ' + e.textContent : ''); })()`,
		func(v string) (bool, error) {
			if !seen[v] && v != "absent" {
				seen[v] = true
				order = append(order, v)
			}
			if strings.HasPrefix(v, "failed") || strings.HasPrefix(v, "canceled") {
				return false, fmt.Errorf("job %s", v)
			}
			return v == "done", nil
		})
	t.Logf("job states seen in the list: %s", strings.Join(order, " → "))
	if mark, err := eval[string](ctx, `String(window.__gostyNoReload)`); err != nil || mark != "still here" {
		t.Fatalf("the page reloaded while waiting (mark %q, %v)", mark, err)
	}
	if pct, err := eval[string](ctx, row+`.querySelector('.pct').textContent`); err != nil || pct != "100%" {
		t.Fatalf("done job shows %q (%v)", pct, err)
	}
	uiCheckPoster(t, ctx, row) // ui_thumbs_test.go
	var list httpapi.JobList
	if err := e2e.GetJSON(base+"/api/v1/jobs", &list); err != nil || len(list.Jobs) != 1 {
		t.Fatalf("job list: %v (%d jobs)", err, len(list.Jobs))
	}
	if o := list.Jobs[0].Options; o.RateControl != "capped_crf" || o.Audio != "first" || o.ChunkSeconds != 2 {
		t.Fatalf("the form's options did not reach the job: %+v", o)
	}

	// The job list on a phone-sized screen.
	phone, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if w, err := eval[int](ctx, `document.documentElement.scrollWidth`); err != nil || w > 390 {
		t.Errorf("the job list is wider than a phone's screen: %d px (%v)", w, err)
	}
	saveScreenshot(t, ctx, dir, "ui-jobs-phone.png", false)
	desk, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(desk, chromedp.EmulateViewport(1280, 900))
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	// The job page: chunk map, renditions, player.
	open, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(open, chromedp.Click(chromedp.CSS(`.job-row[data-job-name="ui-clip.mp4"] a.job-name`)),
		chromedp.WaitVisible(chromedp.ID("player")))
	cancel()
	if err != nil {
		t.Fatalf("opening the job page: %v", err)
	}
	chunks := waitJS(t, ctx, 20*time.Second, "the chunk map",
		`[...document.querySelectorAll('#chunk-map li')].map(li => li.dataset.state + '@' + li.dataset.node + 'x' + li.dataset.attempts).join(' ')`,
		func(v string) (bool, error) { return v != "", nil })
	t.Logf("chunk map: %s", chunks)
	for _, cell := range strings.Fields(chunks) {
		if !strings.HasPrefix(cell, "done@gosty-") {
			t.Errorf("chunk %q is not shown as encoded by a node", cell)
		}
	}
	levels := waitJS(t, ctx, 30*time.Second, "hls.js to list the renditions",
		`String(document.getElementById('quality').dataset.levels || '')`,
		func(v string) (bool, error) { return v != "", nil })
	rows, err := eval[int](ctx, `document.querySelectorAll('#renditions tbody tr').length`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("renditions: %s in the player, %d in the table", levels, rows)
	if levels == "1" || rows < 2 {
		t.Fatalf("want more than one rendition: %s in the player, %d in the table", levels, rows)
	}
	for _, id := range []string{"link-hls", "link-dash"} {
		if href, err := eval[string](ctx, `document.getElementById('`+id+`').getAttribute('href')`); err != nil || !strings.HasPrefix(href, "/api/v1/jobs/") {
			t.Errorf("%s: %q %v", id, href, err)
		}
	}
	// MP4 sizes come from HEAD requests.
	waitJS(t, ctx, 20*time.Second, "MP4 sizes in the renditions table",
		`[...document.querySelectorAll('#renditions tbody td[data-label="MP4"]')].map(td => td.textContent).join(',')`,
		func(v string) (bool, error) {
			return !strings.Contains(v, "…") && !strings.Contains(v, "–") && strings.Contains(v, "B"), nil
		})
	// The quality report: an SSIM between 0 and 1 and a PSNR per rendition.
	ssim, err := eval[string](ctx, `[...document.querySelectorAll('#renditions tbody td.ssim')].map(td => td.textContent).join(',')`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(ssim, ",") {
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil || v <= 0 || v > 1 {
			t.Errorf("SSIM cells %q", ssim)
			break
		}
	}
	if psnr, err := eval[string](ctx, `[...document.querySelectorAll('#renditions tbody td.psnr')].map(td => td.textContent).join(',')`); err != nil || !strings.Contains(psnr, "dB") {
		t.Errorf("PSNR cells %q %v", psnr, err)
	}

	uiCheckSeekPreview(t, ctx) // ui_thumbs_test.go

	uiPlaySecond(t, ctx)
	now, _ := eval[string](ctx, `document.getElementById('now-playing').textContent`)
	t.Logf("player: %s", now)
	uiCheckSubtitles(t, ctx)
	if banner, err := eval[string](ctx, `document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent`); err != nil || banner != "" {
		t.Errorf("error banner shown: %q (%v)", banner, err)
	}
	saveScreenshot(t, ctx, dir, "ui-job.png", true)
	if csp, err := eval[string](ctx, `window.__csp.join('; ')`); err != nil || csp != "" {
		t.Errorf("the page's CSP blocked: %q (%v)", csp, err)
	}
	if strings.Contains(blog.String(), "exception") {
		t.Errorf("the page threw:\n%s", blog)
	}

	// The cluster page lists both nodes, the leader and the quorum (two
	// voters: none may fail).
	cl, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(cl, chromedp.Navigate(base+"/#/cluster"), chromedp.WaitVisible(chromedp.CSS("#members table")))
	cancel()
	if err != nil {
		t.Fatalf("cluster page: %v", err)
	}
	waitJS(t, ctx, 20*time.Second, "both members, a leader and the quorum on the cluster page",
		`[...document.querySelectorAll('#members tbody tr')].map(tr => tr.dataset.name + '=' + tr.dataset.role).sort().join(' ') +
			' quorum=' + document.getElementById('quorum').textContent + ' leader=' + document.getElementById('leader').textContent`,
		func(v string) (bool, error) {
			return strings.Contains(v, "gosty-0=") && strings.Contains(v, "gosty-1=") && strings.Contains(v, "=leader") &&
				strings.Contains(v, "quorum=2 of 2 voters healthy, 0 more may fail") &&
				!strings.HasSuffix(v, "leader=") && !strings.Contains(v, "leader=none"), nil
		})
	saveScreenshot(t, ctx, dir, "ui-cluster.png", true)

	// A node that goes away is reported, not silently frozen.
	back, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(back, chromedp.Navigate(base+"/#/"), chromedp.WaitVisible(chromedp.CSS(`.job-row[data-job-name="ui-clip.mp4"]`)))
	cancel()
	if err != nil {
		t.Fatalf("back to the jobs: %v", err)
	}
	// A resumable (tus) upload through the page: with the threshold at 0
	// every file goes to /api/v1/uploads/ and still becomes a job.
	tusSrc := filepath.Join(t.TempDir(), "ui-tus.mp4")
	if b, err := os.ReadFile(src); err != nil || os.WriteFile(tusSrc, b, 0o644) != nil {
		t.Fatalf("copying the clip: %v", err)
	}
	if _, err := eval[chromedp.Void](ctx, `localStorage.setItem('gosty.resumableThreshold', '0')`); err != nil {
		t.Fatal(err)
	}
	up, cancel = context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(up, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{tusSrc}))
	cancel()
	if err != nil {
		t.Fatalf("choosing the tus file: %v", err)
	}
	waitJS(t, ctx, 60*time.Second, "the resumable upload to finish",
		`(() => { const r = document.querySelector('.upload-row[data-file="ui-tus.mp4"]'); return r ? r.dataset.state + ': ' + r.querySelector('.status').textContent : 'none'; })()`,
		func(v string) (bool, error) {
			if strings.HasPrefix(v, "failed") {
				return false, fmt.Errorf("tus upload %s", v)
			}
			return strings.HasPrefix(v, "done: uploaded: job "), nil
		})
	if used, err := eval[bool](ctx, `performance.getEntriesByType('resource').some((e) => e.name.includes('/api/v1/uploads/'))`); err != nil || !used {
		t.Fatalf("the page did not upload through /api/v1/uploads/ (%v)", err)
	}
	waitJS(t, ctx, 3*time.Minute, "the tus job to be done in the list",
		`(() => { const r = document.querySelector('.job-row[data-job-name="ui-tus.mp4"]'); return r ? r.dataset.state : 'absent'; })()`,
		func(v string) (bool, error) {
			if v == "failed" || v == "canceled" {
				return false, fmt.Errorf("tus job %s", v)
			}
			return v == "done", nil
		})
	if _, err := eval[chromedp.Void](ctx, `localStorage.removeItem('gosty.resumableThreshold')`); err != nil {
		t.Fatal(err)
	}

	// History pages: with one job a page the list shows the newest and
	// offers the older ones, which come on demand.
	if _, err := eval[chromedp.Void](ctx, `localStorage.setItem('gosty.pageSize', '1'); location.reload()`); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 20*time.Second, "one page of one job, and a way to older ones",
		`[...document.querySelectorAll('.job-row')].map(r => r.dataset.jobName).join(',') + '|' + document.getElementById('more-jobs').hidden`,
		func(v string) (bool, error) { return v == "ui-tus.mp4|false", nil })
	saveScreenshot(t, ctx, dir, "ui-paged.png", false)
	if _, err := eval[chromedp.Void](ctx, `document.getElementById('more-jobs').click()`); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 20*time.Second, "the older page",
		`[...document.querySelectorAll('.job-row')].map(r => r.dataset.jobName).join(',')`,
		func(v string) (bool, error) { return v == "ui-tus.mp4,ui-clip.mp4", nil })
	if _, err := eval[chromedp.Void](ctx, `localStorage.removeItem('gosty.pageSize')`); err != nil {
		t.Fatal(err)
	}

	c.Kill(0)
	banner := waitJS(t, ctx, 30*time.Second, "the page to report the lost node",
		`document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent`,
		func(v string) (bool, error) { return v != "", nil })
	t.Logf("node gone: %s", banner)
	if !strings.Contains(banner, strings.TrimPrefix(c.HTTP(0), "http://")) { // 127.0.50.1:8080
		t.Errorf("the message does not name the node: %q", banner)
	}
	saveScreenshot(t, ctx, dir, "ui-unreachable.png", false)
	t.Logf("UI test took %v", time.Since(start).Round(time.Second))
}

// uiCheckSubtitles chooses the clip's English subtitle track in the
// player's menu and waits for its cue to reach the video's text track.
func uiCheckSubtitles(t *testing.T, ctx context.Context) {
	t.Helper()
	waitJS(t, ctx, 30*time.Second, "the subtitle menu to list the English track",
		`(() => { const s = document.getElementById('subtitle-track'); return s.dataset.tracks + ':' + [...s.options].map(o => o.textContent).join('|'); })()`,
		func(v string) (bool, error) { return v == "1:Off|English", nil })
	if _, err := eval[chromedp.Void](ctx, `(() => { const s = document.getElementById('subtitle-track'); s.value = '0'; s.dispatchEvent(new Event('change')); })()`); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 30*time.Second, "the subtitle cue in a showing text track",
		`[...document.getElementById('player').textTracks].filter(tt => tt.mode === 'showing').map(tt => [...(tt.cues || [])].map(c => c.text).join('/')).join(';')`,
		func(v string) (bool, error) { return strings.Contains(v, "Hello from the subtitles"), nil })
}
