package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// client is the command-line side of the public API.
type client struct {
	server string
	token  string
	output string
	hc     *http.Client
}

func runClient(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet("gosty "+cmd, flag.ContinueOnError)
	c := &client{hc: &http.Client{}}
	var tokenFile, options string
	var wait bool
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "node to talk to")
	fs.StringVar(&tokenFile, "api-token-file", "", "file with the API bearer token")
	fs.StringVar(&c.output, "output", "text", "text or json")
	if cmd == "submit" {
		fs.StringVar(&options, "options", "", `job options as JSON, e.g. {"renditions":["720p","360p"]}`)
		fs.BoolVar(&wait, "wait", false, "wait until every job has finished")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		c.token = strings.TrimSpace(string(b))
	}
	c.server = strings.TrimRight(c.server, "/")
	switch cmd {
	case "submit":
		if fs.NArg() == 0 {
			return fmt.Errorf("submit: name at least one file")
		}
		return c.submit(ctx, fs.Args(), options, wait)
	case "jobs":
		var out struct {
			Jobs []jobView `json:"jobs"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs", nil, "", &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATE\tPROGRESS\tERROR")
			for _, j := range out.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%3.0f%%\t%s\n", j.ID, j.Name, j.State, 100*j.Progress, j.Error)
			}
			tw.Flush()
		})
	case "job", "cancel":
		if fs.NArg() != 1 {
			return fmt.Errorf("%s: name one job id", cmd)
		}
		method := http.MethodGet
		if cmd == "cancel" {
			method = http.MethodDelete
		}
		var j json.RawMessage
		if err := c.do(ctx, method, "/api/v1/jobs/"+url.PathEscape(fs.Arg(0)), nil, "", &j); err != nil {
			return err
		}
		return c.printJSON(j)
	case "members":
		var s json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, "", &s); err != nil {
			return err
		}
		return c.printJSON(s)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

type jobView struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	Error    string  `json:"error"`
	Outputs  struct {
		HLS  string `json:"hls"`
		DASH string `json:"dash"`
	} `json:"outputs"`
}

func (c *client) submit(ctx context.Context, files []string, options string, wait bool) error {
	var ids []string
	for _, f := range files {
		j, err := c.upload(ctx, f, options)
		if err != nil {
			return err
		}
		ids = append(ids, j.ID)
		if c.output == "text" {
			fmt.Printf("%s\t%s\t%s\n", j.ID, j.Name, j.State)
		}
	}
	if !wait {
		if c.output == "json" {
			return json.NewEncoder(os.Stdout).Encode(map[string][]string{"jobs": ids})
		}
		return nil
	}
	failed := 0
	var final []jobView
	for _, id := range ids {
		j, err := c.waitJob(ctx, id)
		if err != nil {
			return err
		}
		final = append(final, j)
		if j.State != "done" {
			failed++
		}
		if c.output == "text" {
			fmt.Printf("%s\t%s\t%s\n", j.ID, j.State, firstNonEmpty(j.Error, c.server+j.Outputs.HLS))
		}
	}
	if c.output == "json" {
		if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"jobs": final}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d jobs did not finish", failed, len(ids))
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// upload streams a file as multipart without holding it in memory.
func (c *client) upload(ctx context.Context, path, options string) (jobView, error) {
	f, err := os.Open(path)
	if err != nil {
		return jobView{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if options != "" {
				if err := mw.WriteField("options", options); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var j jobView
	err = c.do(ctx, http.MethodPost, "/api/v1/jobs", pr, mw.FormDataContentType(), &j)
	if err != nil {
		return j, fmt.Errorf("submit %s: %w", path, err)
	}
	return j, nil
}

func (c *client) waitJob(ctx context.Context, id string) (jobView, error) {
	for {
		var j jobView
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, "", &j); err != nil {
			return j, err
		}
		switch j.State {
		case "done", "failed", "canceled":
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Error.Message, e.Error.Code)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) print(v any, text func(io.Writer)) error {
	if c.output == "json" {
		return json.NewEncoder(os.Stdout).Encode(v)
	}
	text(os.Stdout)
	return nil
}

func (c *client) printJSON(raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
