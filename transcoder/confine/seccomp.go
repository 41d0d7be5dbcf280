package confine

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompArch is the audit architecture and the two system call numbers the
// filter needs, for the architectures gosty ships on.
type seccompArch struct {
	audit    uint32
	socket   uint32
	ioUring  uint32
	x32Guard bool // amd64: refuse the x32 ABI (numbers with bit 30 set)
}

var seccompArches = map[string]seccompArch{
	"amd64": {audit: unix.AUDIT_ARCH_X86_64, socket: 41, ioUring: 425, x32Guard: true},
	"arm64": {audit: unix.AUDIT_ARCH_AARCH64, socket: 198, ioUring: 425},
}

// seccompFilter is a classic BPF program for this architecture, nil where
// there is none. It refuses, with EACCES:
//   - socket(2), for every address family: Landlock (ABI < 10) leaves UDP,
//     Multipath TCP and UNIX sockets open, and a media tool needs none;
//   - io_uring_setup(2): io_uring can create sockets without socket(2);
//   - every system call of another ABI (32-bit x86, x32), where the
//     numbers differ and socketcall(2) would slip past.
//
// socketpair(2) stays allowed: it connects to nothing outside the process.
func seccompFilter() []unix.SockFilter {
	a, ok := seccompArches[runtime.GOARCH]
	if !ok {
		return nil
	}
	const (
		offNr   = 0 // struct seccomp_data: int nr; __u32 arch; ...
		offArch = 4
	)
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES))
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jmp := func(op uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }

	// The last instruction is "deny", the one before "allow"; jumps are
	// relative, so each is computed from the instruction's position.
	var prog []unix.SockFilter
	var denyAt []int // indexes of jumps whose true branch denies
	var denyElse []int
	prog = append(prog, ld(offArch))
	denyElse = append(denyElse, len(prog)) // arch != ours → deny
	prog = append(prog, jmp(unix.BPF_JEQ, a.audit, 0, 0))
	prog = append(prog, ld(offNr))
	if a.x32Guard {
		denyAt = append(denyAt, len(prog))
		prog = append(prog, jmp(unix.BPF_JGE, 0x40000000, 0, 0))
	}
	denyAt = append(denyAt, len(prog))
	prog = append(prog, jmp(unix.BPF_JEQ, a.socket, 0, 0))
	denyAt = append(denyAt, len(prog))
	prog = append(prog, jmp(unix.BPF_JEQ, a.ioUring, 0, 0))
	prog = append(prog, ret(allow))
	prog = append(prog, ret(deny))
	last := len(prog) - 1
	for _, i := range denyAt {
		prog[i].Jt = uint8(last - i - 1)
	}
	for _, i := range denyElse {
		prog[i].Jf = uint8(last - i - 1)
	}
	return prog
}

// installSeccomp applies the filter to this thread (and what it execs).
// NO_NEW_PRIVS must already be set.
func installSeccomp() error {
	f := seccompFilter()
	if f == nil {
		return nil
	}
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0)
}
