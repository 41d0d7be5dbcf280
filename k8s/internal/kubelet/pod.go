package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// podRunner runs one pod: its container process, restarts, probes,
// status, and its termination.
type podRunner struct {
	a         *Agent
	ns, name  string
	uid       types.UID
	pod       *corev1.Pod // as it was when it started
	container corev1.Container
	ip        string
	dir       string // per-pod host dir (own volumes, work dir)
	out       io.Writer
	logf      func(format string, args ...any)

	stopReq chan int64    // graceful stop with this grace (seconds)
	killReq chan struct{} // closed: stop now, no grace
	killMu  sync.Once
	stopMu  sync.Once
	done    chan struct{} // the runner has finished (process gone, cleaned up)

	// prepared at start
	img     Image
	mounts  []mount
	env     []string
	argv    []string
	workDir string

	mu         sync.Mutex
	phase      corev1.PodPhase
	startTime  metav1.Time
	running    *corev1.ContainerStateRunning
	waiting    *corev1.ContainerStateWaiting
	lastTerm   *corev1.ContainerStateTerminated
	restarts   int32
	started    bool // startup probe passed (or none)
	ready      bool // readiness probe passing
	terminated bool // being stopped for good
	readySince metav1.Time
	statusMu   sync.Mutex // serialises status patches
}

type mount struct {
	path string // in the container
	host string
}

func (a *Agent) startPod(pod *corev1.Pod) error {
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
		return fmt.Errorf("only pods with exactly one container and no init containers are supported")
	}
	ip, err := a.allocIP(pod.UID)
	if err != nil {
		return err
	}
	r := &podRunner{
		a: a, ns: pod.Namespace, name: pod.Name, uid: pod.UID, pod: pod.DeepCopy(),
		container: pod.Spec.Containers[0], ip: ip, dir: a.podDir(pod.UID), out: a.cfg.Output(pod.Name),
		logf: func(format string, args ...any) {
			a.cfg.Logf("%s/%s: %s", pod.Namespace, pod.Name, fmt.Sprintf(format, args...))
		},
		stopReq: make(chan int64, 1), killReq: make(chan struct{}), done: make(chan struct{}),
		phase: corev1.PodPending, startTime: metav1.Now(),
		waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"},
	}
	a.mu.Lock()
	a.runners[pod.UID] = r
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.run()
	}()
	return nil
}

// terminate starts the graceful stop of a pod being deleted.
func (r *podRunner) terminate(pod *corev1.Pod) {
	grace := int64(30)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	r.stopMu.Do(func() {
		r.logf("deleted: stopping with a grace period of %ds", grace)
		r.stopReq <- grace
	})
}

// kill stops the pod at once and waits for the runner to end.
func (r *podRunner) kill() {
	r.killMu.Do(func() { close(r.killReq) })
	<-r.done
}

func (r *podRunner) killed() bool {
	select {
	case <-r.killReq:
		return true
	default:
		return false
	}
}

// run is the pod's life: prepare, start and restart the container until
// it is told to stop, then clean up and (after a graceful stop) delete
// the pod object.
func (r *podRunner) run() {
	graceful := false
	defer func() { r.finish(graceful) }()

	// Prepare volumes and the environment; secrets or claims that do not
	// exist yet are waited for, as the kubelet does.
	for {
		err := r.prepare()
		if err == nil {
			break
		}
		r.logf("not started: %v", err)
		r.mu.Lock()
		r.waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: err.Error()}
		r.mu.Unlock()
		r.pushStatus()
		var stop bool
		if stop, graceful = r.pause(2 * time.Second); stop {
			return
		}
	}

	backoff := r.a.cfg.RestartBackoff
	for {
		proc, err := r.startProcess()
		if err != nil {
			r.logf("start: %v", err)
			r.recordExit(-1, "StartError", err.Error())
		} else {
			var stop bool
			if stop, graceful = r.supervise(proc); stop {
				return
			}
			if time.Since(proc.startedAt) > 10*time.Minute {
				backoff = r.a.cfg.RestartBackoff
			}
		}
		r.mu.Lock()
		r.restarts++
		r.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %v restarting the container", backoff)}
		r.mu.Unlock()
		r.pushStatus()
		var stop bool
		if stop, graceful = r.pause(backoff); stop {
			return
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
}

// finish cleans up after the runner: the pod's address and directory go,
// the agent forgets it, and after a graceful stop (not a kill) the pod
// object is deleted.
func (r *podRunner) finish(graceful bool) {
	r.a.releaseIP(r.ip)
	_ = os.RemoveAll(r.dir)
	r.a.mu.Lock()
	delete(r.a.runners, r.uid)
	r.a.mu.Unlock()
	close(r.done)
	if graceful && !r.killed() {
		for range 5 {
			if err := r.a.finalDelete(r.pod); err == nil {
				r.logf("terminated and deleted")
				break
			}
			time.Sleep(time.Second)
		}
	}
}

// pause waits d, or less if the pod is told to stop (then stop, and
// graceful unless it was a kill).
func (r *podRunner) pause(d time.Duration) (stop, graceful bool) {
	select {
	case <-r.killReq:
		return true, false
	case <-r.stopReq:
		return true, true
	case <-time.After(d):
		return false, false
	}
}

// supervise watches a running container, with its probes, until it exits,
// a liveness probe restarts it or the pod is told to stop (then stop, and
// graceful unless it was a kill); it has recorded the exit.
func (r *podRunner) supervise(proc *process) (stop, graceful bool) {
	pctx, cancelProbes := context.WithCancel(context.Background())
	restart := make(chan string, 1)
	go r.probe(pctx, restart)
	var stopWith int64 = -1
	select {
	case <-proc.exited:
		r.logf("container exited: %s", proc.state())
	case <-r.killReq:
		stopWith = 0
	case g := <-r.stopReq:
		stopWith, graceful = g, true
	case why := <-restart:
		r.logf("restarting the container: %s", why)
		r.stopProcess(proc, r.graceSeconds())
	}
	cancelProbes()
	if stopWith >= 0 {
		r.mu.Lock()
		r.terminated, r.ready = true, false
		r.mu.Unlock()
		if stopWith > 0 {
			r.pushStatus()
		}
		r.stopProcess(proc, stopWith)
		r.recordExit(proc.exitCode(), proc.reason(), "")
		return true, graceful
	}
	<-proc.exited
	r.recordExit(proc.exitCode(), proc.reason(), "")
	return false, false
}

func (r *podRunner) graceSeconds() int64 {
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

func (r *podRunner) recordExit(code int32, reason, msg string) {
	r.mu.Lock()
	var started metav1.Time
	if r.running != nil {
		started = r.running.StartedAt
	}
	r.lastTerm = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg,
		StartedAt: started, FinishedAt: metav1.Now()}
	r.running, r.ready, r.started = nil, false, false
	r.mu.Unlock()
	if !r.killed() {
		r.pushStatus()
	}
}

// pushStatus writes the pod's status as the kubelet would report it.
func (r *podRunner) pushStatus() {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	r.mu.Lock()
	ready := r.ready && r.running != nil && !r.terminated
	cond := func(t corev1.PodConditionType, ok bool, since metav1.Time) map[string]any {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		c := map[string]any{"type": t, "status": s, "lastProbeTime": nil, "lastTransitionTime": since}
		if !ok && (t == corev1.PodReady || t == corev1.ContainersReady) {
			c["reason"] = "ContainersNotReady"
			c["message"] = "containers with unready status: [" + r.container.Name + "]"
		}
		return c
	}
	readySince := r.readySince
	if readySince.IsZero() {
		readySince = r.startTime
	}
	state := map[string]any{}
	switch {
	case r.running != nil:
		state["running"] = r.running
	case r.waiting != nil:
		state["waiting"] = r.waiting
	case r.lastTerm != nil:
		state["terminated"] = r.lastTerm
	}
	last := map[string]any{}
	if r.lastTerm != nil && r.running != nil || r.lastTerm != nil && r.waiting != nil {
		last["terminated"] = r.lastTerm
	}
	cs := map[string]any{
		"name": r.container.Name, "image": r.container.Image, "imageID": "local://" + r.container.Image,
		"containerID": fmt.Sprintf("local://%s-%d", r.uid, r.restarts),
		"ready":       ready, "started": r.started && r.running != nil, "restartCount": r.restarts,
		"state": state, "lastState": last,
	}
	status := map[string]any{
		"phase":  r.phase,
		"hostIP": "127.0.0.1", "hostIPs": []map[string]string{{"ip": "127.0.0.1"}},
		"podIP": PodIP(r.ip), "podIPs": []map[string]string{{"ip": PodIP(r.ip)}},
		"startTime": r.startTime,
		"conditions": []map[string]any{
			cond(corev1.PodReadyToStartContainers, true, r.startTime),
			cond(corev1.PodInitialized, true, r.startTime),
			cond(corev1.PodReady, ready, readySince),
			cond(corev1.ContainersReady, ready, readySince),
			cond(corev1.PodScheduled, true, r.startTime),
		},
		"containerStatuses": []map[string]any{cs},
	}
	r.mu.Unlock()
	if err := r.a.patchStatus(r.ns, r.name, r.uid, status); err != nil && !r.killed() {
		r.logf("status: %v", err)
	}
}

// setReady records a readiness result; a change is reported.
func (r *podRunner) setReady(ok bool) {
	r.mu.Lock()
	changed := r.ready != ok && !r.terminated
	if changed {
		r.ready = ok
		r.readySince = metav1.Now()
	}
	r.mu.Unlock()
	if changed {
		r.logf("ready: %v", ok)
		r.pushStatus()
	}
}

func (r *podRunner) setStarted() {
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	r.pushStatus()
}

// prepare makes the volumes and resolves command, environment and work dir.
func (r *podRunner) prepare() error {
	if err := os.MkdirAll(filepath.Join(r.dir, "rootfs"), 0o755); err != nil {
		return err
	}
	img, ok := r.a.image(r.container.Image)
	if !ok {
		return fmt.Errorf("image %q is unknown to this agent", r.container.Image)
	}
	r.img = img
	vols, err := r.volumes()
	if err != nil {
		return err
	}
	r.mounts = nil
	for _, vm := range r.container.VolumeMounts {
		host, ok := vols[vm.Name]
		if !ok {
			continue // a volume the agent does not provide (documented)
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, vm.SubPath)
			if err := os.MkdirAll(host, 0o755); err != nil {
				return err
			}
		}
		r.mounts = append(r.mounts, mount{path: filepath.Clean(vm.MountPath), host: host})
	}
	env, err := r.environment(img)
	if err != nil {
		return err
	}
	r.env = env
	argv, err := r.command(img)
	if err != nil {
		return err
	}
	r.argv = argv
	wd := r.container.WorkingDir
	if wd == "" {
		wd = img.WorkingDir
	}
	r.workDir = filepath.Join(r.dir, "rootfs")
	if wd != "" {
		if mapped := r.rewrite(wd); mapped != wd {
			r.workDir = mapped
		}
	}
	return nil
}
