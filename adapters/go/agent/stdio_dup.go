//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd

package agent

import (
	"fmt"
	"os"
	"syscall"
)

// takeOverStdio keeps private duplicates of fds 0 and 1 for the protocol (close-on-exec: a child process never
// holds the pipes open) and points fd 1 at stderr and fd 0 at /dev/null. So whatever the handlers write to fd 1,
// with fmt.Println or through a child process that inherits it, lands on stderr, and nothing else reads the
// protocol's input. On failure it leaves the descriptor concerned alone and says why.
func takeOverStdio() (in *os.File, out *os.File, err error) {
	in, out = os.Stdin, os.Stdout
	// Held for reading, as package os does it: no fork may copy a descriptor between dup and close-on-exec.
	syscall.ForkLock.RLock()
	outFd, outErr := syscall.Dup(1)
	if outErr == nil {
		syscall.CloseOnExec(outFd)
	}
	inFd, inErr := syscall.Dup(0)
	if inErr == nil {
		syscall.CloseOnExec(inFd)
	}
	syscall.ForkLock.RUnlock()

	if outErr != nil {
		err = fmt.Errorf("cannot duplicate stdout (%v): fd 1 is left as it is, and handlers must not write to it", outErr)
	} else {
		out = os.NewFile(uintptr(outFd), "protocol-stdout")
		if moveErr := dupTo(2, 1); moveErr != nil {
			err = fmt.Errorf("cannot point fd 1 at stderr (%v): handlers must not write to stdout", moveErr)
		}
	}
	if inErr == nil {
		in = os.NewFile(uintptr(inFd), "protocol-stdin")
		if devnull, openErr := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); openErr == nil {
			_ = dupTo(devnull, 0) // best effort: a child reading fd 0 would only steal protocol input
			_ = syscall.Close(devnull)
		}
	}
	return in, out, err
}
