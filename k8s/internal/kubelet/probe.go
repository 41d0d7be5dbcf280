package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gosty/gosty/internal/e2e"
)

// probe runs the container's startup probe, then its liveness and
// readiness probes, until ctx ends; a failed startup or liveness probe
// asks for a restart.
func (r *podRunner) probe(ctx context.Context, restart chan<- string) {
	c := r.container
	if p := c.StartupProbe; p != nil {
		if !r.waitProbe(ctx, p, "startup") {
			if ctx.Err() == nil {
				restart <- "startup probe failed"
			}
			return
		}
		r.setStarted()
	}
	done := make(chan struct{})
	if p := c.ReadinessProbe; p != nil {
		go func() {
			defer close(done)
			r.loopProbe(ctx, p, "readiness", func(ok bool) { r.setReady(ok) })
		}()
	} else {
		close(done)
		r.setReady(true)
	}
	if p := c.LivenessProbe; p != nil {
		r.loopProbe(ctx, p, "liveness", func(ok bool) {
			if !ok {
				select {
				case restart <- "liveness probe failed":
				default:
				}
			}
		})
	}
	<-done
}

func periodOf(p *corev1.Probe) time.Duration {
	return time.Duration(max(p.PeriodSeconds, 1)) * time.Second
}

// waitProbe probes until success (true) or failureThreshold failures.
func (r *podRunner) waitProbe(ctx context.Context, p *corev1.Probe, what string) bool {
	if !e2e.SleepCtx(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return false
	}
	failures := int32(0)
	for {
		if err := r.runProbe(ctx, p); err == nil {
			return true
		} else if ctx.Err() != nil {
			return false
		} else if failures++; failures >= max(p.FailureThreshold, 1) {
			r.logf("%s probe failed %d times: %v", what, failures, err)
			return false
		}
		if !e2e.SleepCtx(ctx, periodOf(p)) {
			return false
		}
	}
}

// loopProbe probes every period and reports the result with the
// thresholds applied (a change needs successThreshold successes or
// failureThreshold failures in a row); the first success is reported.
func (r *podRunner) loopProbe(ctx context.Context, p *corev1.Probe, what string, report func(bool)) {
	if !e2e.SleepCtx(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return
	}
	var ok, known bool
	succ, fail := int32(0), int32(0)
	for {
		err := r.runProbe(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			succ, fail = succ+1, 0
			if (!ok || !known) && succ >= max(p.SuccessThreshold, 1) {
				ok, known = true, true
				report(true)
			}
		} else {
			succ, fail = 0, fail+1
			if (ok || !known) && fail >= max(p.FailureThreshold, 1) {
				r.logf("%s probe failed %d times: %v", what, fail, err)
				ok, known = false, true
				report(false)
			}
		}
		if !e2e.SleepCtx(ctx, periodOf(p)) {
			return
		}
	}
}

func (r *podRunner) runProbe(ctx context.Context, p *corev1.Probe) error {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.runAction(ctx, p.ProbeHandler.Exec, p.ProbeHandler.HTTPGet, p.ProbeHandler.TCPSocket, p.ProbeHandler.GRPC != nil)
}

// runHandler runs a lifecycle hook (preStop).
func (r *podRunner) runHandler(ctx context.Context, h *corev1.LifecycleHandler) error {
	if h.Sleep != nil {
		if !e2e.SleepCtx(ctx, time.Duration(h.Sleep.Seconds)*time.Second) {
			return ctx.Err()
		}
		return nil
	}
	return r.runAction(ctx, h.Exec, h.HTTPGet, h.TCPSocket, false)
}

func (r *podRunner) runAction(ctx context.Context, ex *corev1.ExecAction, hg *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction, grpc bool) error {
	switch {
	case ex != nil:
		// "In the container": the command runs here with the container's
		// environment and paths.
		if len(ex.Command) == 0 {
			return fmt.Errorf("exec: no command")
		}
		argv := make([]string, len(ex.Command))
		for i, a := range ex.Command {
			argv[i] = r.rewrite(a)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env, cmd.Dir = r.env, r.workDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("exec %v: %v: %s", argv, err, strings.TrimSpace(string(out)))
		}
		return nil
	case hg != nil:
		port, err := r.port(hg.Port)
		if err != nil {
			return err
		}
		host := HostIP(hg.Host)
		if host == "" {
			host = r.ip
		}
		scheme := "http"
		if hg.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := hg.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, "GET", scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		for _, h := range hg.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "kube-probe/test-agent")
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as the kubelet's probes
			DisableKeepAlives: true,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	case tcp != nil:
		port, err := r.port(tcp.Port)
		if err != nil {
			return err
		}
		host := HostIP(tcp.Host)
		if host == "" {
			host = r.ip
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return c.Close()
	case grpc:
		return fmt.Errorf("grpc probes are not supported")
	}
	return fmt.Errorf("no handler")
}

// port resolves a probe's port: a number or a container port's name.
func (r *podRunner) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range r.container.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}
