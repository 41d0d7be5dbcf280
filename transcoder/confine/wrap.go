package confine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// init turns the process into the wrapper when it was started by Command.
// It runs before main (and before a test binary's TestMain), so nothing
// else of the program has started.
func init() {
	if len(os.Args) >= 2 && os.Args[0] == Argv0 {
		err := wrap(os.Args[1:])
		// wrap returns only when it failed.
		fmt.Fprintf(os.Stderr, "%s%v\n", StderrPrefix, err)
		os.Exit(ExitSetup)
	}
}

// System paths every tool may read and execute below (missing ones are
// skipped): the dynamic loader, the libraries and the programs.
var systemDirs = []string{"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"}

// System files (or directories) a tool may read, not execute.
var systemReads = []string{
	"/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/localtime",
	"/dev/urandom", "/dev/random",
	// CPU count and NUMA layout, read by the encoders' thread pools.
	"/proc/cpuinfo", "/sys/devices/system/cpu", "/sys/devices/system/node",
}

const (
	readFile = llsyscall.AccessFSReadFile
	readDir  = llsyscall.AccessFSReadFile | llsyscall.AccessFSReadDir
	// writeDir is what a tool needs in its work directory: make, write,
	// truncate, rename (within the directory) and delete files and
	// directories. Not execute, not devices, sockets, fifos or symlinks,
	// not moving files in from elsewhere (refer).
	writeDir = readDir | llsyscall.AccessFSWriteFile | llsyscall.AccessFSTruncate |
		llsyscall.AccessFSMakeReg | llsyscall.AccessFSMakeDir |
		llsyscall.AccessFSRemoveFile | llsyscall.AccessFSRemoveDir
	execFile = llsyscall.AccessFSExecute | llsyscall.AccessFSReadFile
)

// rules is the Landlock ruleset for one run of bin under p.
func rules(p Policy, bin string) []landlock.Rule {
	rs := []landlock.Rule{
		landlock.RODirs(systemDirs...).IgnoreIfMissing(),
		landlock.PathAccess(readFile|llsyscall.AccessFSWriteFile, "/dev/null"),
		landlock.PathAccess(execFile, bin),
	}
	for _, r := range systemReads {
		if _, err := os.Stat(r); err == nil {
			rs = append(rs, readRule(r))
		}
	}
	for _, r := range p.Read {
		rs = append(rs, readRule(r))
	}
	if len(p.Write) > 0 {
		rs = append(rs, landlock.PathAccess(writeDir, p.Write...))
	}
	return rs
}

// readRule lets a file be read, or a directory be listed and read below.
// (Landlock refuses directory rights on a file.)
func readRule(path string) landlock.Rule {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return landlock.PathAccess(readDir, path)
	}
	return landlock.PathAccess(readFile, path)
}

// config is the strongest Landlock configuration go-landlock knows,
// degraded to what the running kernel supports. No network rule is ever
// added, so every TCP (and, from ABI 10, UDP) bind and connect is refused.
func config() landlock.Config { return landlock.V11.BestEffort() }

// wrap confines this thread and execs the tool. It returns only on error.
func wrap(argv []string) error {
	// Landlock and seccomp apply to this thread; the exec must happen on
	// it, so the goroutine never leaves it.
	runtime.LockOSThread()
	f := os.NewFile(policyFD, "policy")
	if f == nil {
		return fmt.Errorf("no policy on fd %d", policyFD)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	if len(data) > maxPolicyBytes {
		return fmt.Errorf("policy larger than %d bytes", maxPolicyBytes)
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode policy: %w", err)
	}
	if w.Bin == "" || len(argv) == 0 || argv[0] != w.Bin {
		return fmt.Errorf("policy names %q, argv %q", w.Bin, argv)
	}
	fd, flags, err := config().NewRulesetFD(rules(w.Policy, w.Bin)...)
	if err != nil {
		return fmt.Errorf("landlock ruleset: %w", err)
	}
	// Required by both landlock_restrict_self and a seccomp filter
	// installed without CAP_SYS_ADMIN; it also keeps a setuid binary from
	// gaining privileges.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(NO_NEW_PRIVS): %w", err)
	}
	if fd >= 0 {
		err := llsyscall.LandlockRestrictSelf(fd, flags)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("landlock_restrict_self: %w", err)
		}
	}
	// EINVAL: a kernel built without seccomp filters; Landlock alone then.
	if !w.NoSeccomp {
		if err := installSeccomp(); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	if err := syscall.Exec(w.Bin, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", w.Bin, err)
	}
	return nil
}

func abiVersion() (int, error) { return llsyscall.LandlockGetABIVersion() }
