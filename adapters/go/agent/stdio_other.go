//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package agent

import "os"

// takeOverStdio, where package syscall has no dup2 (Windows, Solaris, Plan 9, wasm): the protocol keeps stdout,
// and os.Stdout, which fmt.Println writes to, becomes stderr. A child process that inherits the real stdout
// could still write into the protocol: give it cmd.Stdout = os.Stderr.
func takeOverStdio() (in *os.File, out *os.File, err error) {
	in, out = os.Stdin, os.Stdout
	os.Stdout = os.Stderr
	return in, out, nil
}
