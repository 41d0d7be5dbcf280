package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// uiCheckPoster (TestUI, TestUIWithTokens): the done job's row in the list shows its poster,
// an image the browser loaded (naturalWidth > 0).
func uiCheckPoster(t *testing.T, ctx context.Context, row string) {
	t.Helper()
	waitJS(t, ctx, 30*time.Second, "the job's poster in the list",
		`(() => { const r = `+row+`, i = r && r.querySelector('img.poster'); return i ? (i.complete && i.src ? String(i.naturalWidth) : 'loading') : 'none'; })()`,
		func(v string) (bool, error) { return v != "none" && v != "loading" && v != "0", nil })
}

// uiCheckSeekPreview (TestUI): on the job page, the pointer over the
// middle of the player's seek bar shows a storyboard thumbnail: a region
// of a sprite sheet that the browser can load; a click there seeks.
func uiCheckSeekPreview(t *testing.T, ctx context.Context) {
	t.Helper()
	waitJS(t, ctx, 20*time.Second, "the storyboard's cues", `String(document.getElementById('seekbar').dataset.cues || '')`,
		func(v string) (bool, error) { return v != "" && v != "0", nil })
	rect, err := eval[[]float64](ctx, `(() => { const r = document.getElementById('seekbar').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	if err != nil || len(rect) != 2 {
		t.Fatalf("seek bar position: %v %v", rect, err)
	}
	hover, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = chromedp.Do(hover, chromedp.MouseEvent(chromedp.MouseMoved, rect[0], rect[1]))
	cancel()
	if err != nil {
		t.Fatalf("hovering the seek bar: %v", err)
	}
	bg := waitJS(t, ctx, 20*time.Second, "a preview over the seek bar",
		`(() => { const p = document.getElementById('seek-preview'), th = document.getElementById('seek-thumb');
			return p.hidden || th.hidden ? '' : th.dataset.sprite + ' ' + getComputedStyle(th).backgroundImage + ' ' + th.style.width + 'x' + th.style.height; })()`,
		func(v string) (bool, error) { return strings.Contains(v, "url("), nil })
	t.Logf("seek preview: %s", bg)
	if !strings.Contains(bg, "/storyboard/sprite-000.jpg") {
		t.Errorf("the preview does not show a storyboard sprite: %q", bg)
	}
	w, err := eval[int](ctx, `(async () => { const img = new Image(); img.src = document.getElementById('seek-thumb').dataset.sprite; await img.decode(); return img.naturalWidth; })()`,
		chromedp.EvalAwaitPromise)
	if err != nil || w <= 0 {
		t.Errorf("the preview's sprite does not load: width %d (%v)", w, err)
	}
	saveScreenshot(t, ctx, artifactDir(t), "ui-seek-preview.png", false)
	// A click there seeks to the middle.
	click, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = chromedp.Do(click, chromedp.MouseClickXY(rect[0], rect[1]))
	cancel()
	if err != nil {
		t.Fatalf("clicking the seek bar: %v", err)
	}
	waitJS(t, ctx, 20*time.Second, "the click to seek to the middle",
		`(() => { const v = document.getElementById('player'); return v.duration > 0 && Math.abs(v.currentTime - v.duration / 2) < 1 ? 'yes' : String(v.currentTime); })()`,
		func(v string) (bool, error) { return v == "yes", nil })
	leave, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = chromedp.Do(leave, chromedp.MouseEvent(chromedp.MouseMoved, 1, 1))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
}
