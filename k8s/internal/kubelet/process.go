package kubelet

// process.go starts and stops one run of a pod's container.

import (
	"context"
	"os/exec"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// process is one run of the container.
type process struct {
	cmd       *exec.Cmd
	startedAt time.Time
	exited    chan struct{}
	err       error // from Wait
	signaled  bool  // SIGKILLed by us
}

func (p *process) exitCode() int32 {
	if p.cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(p.cmd.ProcessState.ExitCode())
}

func (p *process) reason() string {
	switch c := p.exitCode(); {
	case c == 0:
		return "Completed"
	case c == 137 && p.signaled:
		return "Killed"
	default:
		return "Error"
	}
}

func (p *process) state() string {
	if p.cmd.ProcessState == nil {
		return "running"
	}
	return p.cmd.ProcessState.String()
}

func (r *podRunner) startProcess() (*process, error) {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	cmd.Env = r.env
	cmd.Dir = r.workDir
	cmd.Stdout, cmd.Stderr = r.out, r.out
	// Its own process group (the container), killed should the test
	// binary die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, startedAt: time.Now(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	r.mu.Lock()
	r.phase = corev1.PodRunning
	r.waiting = nil
	r.running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.startedAt)}
	r.started = r.container.StartupProbe == nil
	r.ready = false
	r.mu.Unlock()
	r.logf("container started (pid %d, at %s, pod IP %s): %v", cmd.Process.Pid, r.ip, PodIP(r.ip), r.argv)
	r.pushStatus()
	return p, nil
}

// stopProcess runs the preStop hook, sends SIGTERM, and SIGKILLs the
// process group when the grace period (counted from the start of the
// hook) runs out or kill is called.
func (r *podRunner) stopProcess(p *process, grace int64) {
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	select {
	case <-p.exited:
		return
	default:
	}
	if grace > 0 {
		if h := r.container.Lifecycle; h != nil && h.PreStop != nil {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			go func() {
				select {
				case <-r.killReq:
					cancel()
				case <-ctx.Done():
				}
			}()
			start := time.Now()
			if err := r.runHandler(ctx, h.PreStop); err != nil {
				r.logf("preStop hook: %v", err)
			} else {
				r.logf("preStop hook done in %v", time.Since(start).Round(10*time.Millisecond))
			}
			cancel()
		}
		// As the kubelet: at least 2 s between SIGTERM and SIGKILL.
		if time.Until(deadline) < 2*time.Second {
			deadline = time.Now().Add(2 * time.Second)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		termAt := time.Now()
		r.logf("SIGTERM sent")
		select {
		case <-p.exited:
			r.logf("container stopped %v after SIGTERM: %s", time.Since(termAt).Round(10*time.Millisecond), p.state())
		case <-time.After(time.Until(deadline)):
			r.logf("grace period over: SIGKILL")
		case <-r.killReq:
		}
	}
	p.signaled = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	// Children that left the group die with the container too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}
