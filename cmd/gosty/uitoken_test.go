package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestUIWithTokens: on a node with API tokens (reads closed, public
// playback, so files need the token too), the page without a token says
// readably that one is needed and shows no job; once the token is entered
// it lists the jobs live, uploads, and plays through hls.js (the token in
// a header: nothing the page requests carries it in its URL).
func TestUIWithTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process, ffmpeg and a browser")
	}
	chrome := chromiumOrSkip(t)
	const tok = "ui-token-3b9f1c"
	dir := t.TempDir()
	tf := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tf, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e2e.FastCluster(t, 112, 1, "--slots", "2", "--preset", "ultrafast", "--api-token-file", tf)
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	base := c.HTTP(0)
	nodetest.WaitReady(t, base, 30*time.Second)
	src := filepath.Join(dir, "tok-clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	ctx, blog := newBrowser(t, chrome)
	nav, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := chromedp.Do(nav, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("token-form")))
	cancel()
	if err != nil {
		t.Fatalf("loading %s/ without a token: no token form: %v", base, err)
	}
	why := waitJS(t, ctx, 20*time.Second, "a readable 'token needed' message",
		`document.getElementById('token-why').textContent + '|' + (document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent)`,
		func(v string) (bool, error) {
			return strings.HasPrefix(v, "Token needed") && strings.Contains(v, "|Token needed"), nil
		})
	t.Logf("without a token: %s", why)
	if n, err := eval[int](ctx, `document.querySelectorAll('.job-row').length`); err != nil || n != 0 {
		t.Fatalf("job rows without a token: %d (%v)", n, err)
	}
	saveScreenshot(t, ctx, artifactDir(t), "ui-token-needed.png", false)

	// Enter the token: the list connects, with no reload.
	if _, err := eval[chromedp.Void](ctx, `window.__gostyNoReload = 'still here'`); err != nil {
		t.Fatal(err)
	}
	enter, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(enter, chromedp.SendKeys(chromedp.ID("token-input"), tok), chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitNotVisible(chromedp.ID("token-form")))
	cancel()
	if err != nil {
		t.Fatalf("entering the token: %v", err)
	}
	waitJS(t, ctx, 20*time.Second, "the live job list",
		`document.querySelector('.empty') ? document.querySelector('.empty').textContent : ''`,
		func(v string) (bool, error) { return strings.HasPrefix(v, "No jobs yet"), nil })
	waitJS(t, ctx, 20*time.Second, "the banner to clear",
		`document.getElementById('banner').hidden ? 'clear' : document.getElementById('banner-text').textContent`,
		func(v string) (bool, error) { return v == "clear", nil })

	up, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(up, chromedp.SetValue(chromedp.ID("chunk-seconds"), "2"),
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src}))
	cancel()
	if err != nil {
		t.Fatalf("choosing the file: %v", err)
	}
	row := `document.querySelector('.job-row[data-job-name="tok-clip.mp4"]')`
	waitJS(t, ctx, 3*time.Minute, "the job to be done in the list",
		`(() => { const r = `+row+`; const u = document.querySelector('.upload-row[data-file="tok-clip.mp4"]'); return (r ? r.dataset.state : 'absent') + ' / upload ' + (u ? u.dataset.state + ': ' + u.querySelector('.status').textContent : 'none'); })()`,
		func(v string) (bool, error) {
			if strings.Contains(v, "upload failed") || strings.HasPrefix(v, "failed") || strings.HasPrefix(v, "canceled") {
				return false, fmt.Errorf("job %s", v)
			}
			return strings.HasPrefix(v, "done "), nil
		})

	// The poster comes with the token too (an <img> cannot send it).
	uiCheckPoster(t, ctx, `document.querySelector('.job-row[data-job-name="tok-clip.mp4"]')`) // ui_thumbs_test.go
	open, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = chromedp.Do(open, chromedp.Click(chromedp.CSS(`.job-row[data-job-name="tok-clip.mp4"] a.job-name`)),
		chromedp.WaitVisible(chromedp.ID("player")))
	cancel()
	if err != nil {
		t.Fatalf("opening the job page: %v", err)
	}
	waitJS(t, ctx, 30*time.Second, "hls.js to list the renditions",
		`String(document.getElementById('quality').dataset.levels || '')`,
		func(v string) (bool, error) { return v != "", nil })
	uiPlaySecond(t, ctx)
	if mark, err := eval[string](ctx, `String(window.__gostyNoReload)`); err != nil || mark != "still here" {
		t.Fatalf("the page reloaded (mark %q, %v)", mark, err)
	}
	// Segments came from the API, and no URL the page asked for carries
	// the token.
	urls, err := eval[string](ctx, `performance.getEntriesByType('resource').map((e) => e.name).join('\n')`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(urls, "/files/") {
		t.Errorf("no file of the job was fetched:\n%s", urls)
	}
	if strings.Contains(urls, tok) {
		t.Errorf("a URL carries the token:\n%s", urls)
	}
	if banner, err := eval[string](ctx, `document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent`); err != nil || banner != "" {
		t.Errorf("error banner shown: %q (%v)", banner, err)
	}
	if strings.Contains(blog.String(), "exception") {
		t.Errorf("the page threw:\n%s", blog)
	}
	saveScreenshot(t, ctx, artifactDir(t), "ui-token-job.png", true)
}
