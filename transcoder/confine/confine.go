// Package confine runs a media tool (ffmpeg, ffprobe) under Landlock and a
// small seccomp filter, so that a decoder bug exploited by a hostile upload
// reaches only what that one run needs.
//
// A Go program cannot confine one child directly: Landlock restricts the
// calling thread and everything it starts later. So Command starts the
// current executable again (/proc/self/exe) with argv[0] "gosty-confine";
// this package's init function recognises that argv[0] before anything
// else of the program runs, reads the Policy from file descriptor 3,
// restricts its own thread and execve's the tool, which inherits the
// restrictions. Any binary that links this package (gosty, and every test
// binary that links the transcoder) can therefore act as the wrapper.
//
// What a confined tool may do:
//   - read (not list, not write) the files named in Policy.Read, list and
//     read below directories named there;
//   - create, write, truncate and delete files and directories below the
//     directories in Policy.Write;
//   - read and execute the system's programs and libraries (/usr, /lib,
//     /lib64, /bin, /sbin and the tool binary itself), read
//     /etc/ld.so.cache, /etc/localtime, /dev/urandom, the CPU and NUMA
//     topology under /sys/devices/system and /proc/cpuinfo; write
//     /dev/null;
//   - nothing else on the file system: not the node's data directory (the
//     raft log, other jobs' blobs), its key files, the ServiceAccount token;
//   - no TCP connect or bind (Landlock ABI 4+; UDP too from ABI 10), no
//     abstract UNIX sockets or signals to processes outside the sandbox
//     (ABI 6+); and on amd64 and arm64 the seccomp filter refuses socket(2)
//     for every address family and io_uring_setup(2), whatever the
//     kernel's Landlock ABI, so UDP, MPTCP, raw and UNIX sockets are out
//     too.
//
// Best effort: on a kernel without Landlock (or with an older ABI) the
// wrapper still runs and enforces what the kernel supports; ABI reports
// what that is, and the transcoder logs it once at start.
package confine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Argv0 is the wrapper's argv[0]: the marker init looks for.
const Argv0 = "gosty-confine"

// ExitSetup is the wrapper's exit status when it could not confine or
// start the tool; its stderr then starts with StderrPrefix.
const (
	ExitSetup    = 125
	StderrPrefix = Argv0 + ": "
)

// policyFD is where the wrapper reads its Policy (cmd.ExtraFiles[0]).
// A file rather than argv: a package run reads one file per chunk of
// every rendition, more than fits in an argument list for long media.
const policyFD = 3

// maxPolicyBytes bounds what the wrapper reads from policyFD.
const maxPolicyBytes = 64 << 20

// Policy is what one run of a tool may touch beyond the system's files.
type Policy struct {
	// Read: files the tool reads (its inputs, a concat list and the
	// files it names), or directories it may list and read below.
	Read []string `json:"read,omitempty"`
	// Write: directories the tool may create, write and delete files
	// and directories below (its work or output directory).
	Write []string `json:"write,omitempty"`
}

// wire is what travels on policyFD.
type wire struct {
	Policy
	Bin string `json:"bin"`
	// NoSeccomp leaves the socket filter out, so that a test can show
	// what Landlock alone refuses (withoutSeccomp).
	NoSeccomp bool `json:"no_seccomp,omitempty"`
}

// withoutSeccomp is set by tests only.
var withoutSeccomp bool

// Command returns a Cmd that runs bin with args under p. The caller sets
// Stdout, Stderr and SysProcAttr as usual, and must close every file in
// cmd.ExtraFiles once Start has returned (see Close).
func Command(p Policy, bin string, args ...string) (*exec.Cmd, error) {
	data, err := json.Marshal(wire{Policy: p, Bin: bin, NoSeccomp: withoutSeccomp})
	if err != nil {
		return nil, fmt.Errorf("confine: %w", err)
	}
	f, err := policyFile(data)
	if err != nil {
		return nil, fmt.Errorf("confine: policy file: %w", err)
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args = append([]string{Argv0, bin}, args...)
	cmd.ExtraFiles = []*os.File{f}
	return cmd, nil
}

// Close closes the policy file of a Cmd made by Command.
func Close(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			_ = f.Close()
		}
	}
}

// policyFile returns an anonymous in-memory file holding data, positioned
// at its start: nothing on disk, and no pipe a stuck child could block.
func policyFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("gosty-confine-policy", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "gosty-confine-policy")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Status is what confinement the kernel gives a tool.
type Status struct {
	ABI     int   // Landlock ABI version, 0 = none
	Err     error // why there is no Landlock, when ABI is 0
	Seccomp bool  // the socket filter is applied (amd64, arm64)
}

// Enforced lists what the kernel restricts, for the start-up log.
func (s Status) Enforced() string {
	var parts []string
	if s.ABI >= 1 {
		parts = append(parts, "files")
	}
	if s.ABI >= 4 {
		parts = append(parts, "tcp")
	}
	if s.ABI >= 6 {
		parts = append(parts, "abstract-unix+signals")
	}
	if s.ABI >= 9 {
		parts = append(parts, "pathname-unix")
	}
	if s.ABI >= 10 {
		parts = append(parts, "udp")
	}
	if s.Seccomp {
		parts = append(parts, "seccomp:no-sockets")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ",")
}

// Check reports the kernel's Landlock ABI.
func Check() Status {
	abi, err := abiVersion()
	s := Status{ABI: abi, Seccomp: seccompFilter() != nil && kernelSeccomp()}
	if abi <= 0 {
		s.ABI = 0
		if err == nil {
			err = errors.New("landlock ABI 0")
		}
		s.Err = err
	}
	return s
}

// kernelSeccomp reports whether the kernel has seccomp (its status line
// in /proc/self/status); without it the wrapper applies Landlock alone.
func kernelSeccomp() bool {
	b, err := os.ReadFile("/proc/self/status")
	return err == nil && strings.Contains(string(b), "\nSeccomp:")
}
