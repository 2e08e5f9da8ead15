package agent

import "syscall"

// dupTo makes newfd a copy of oldfd (dup2; linux/arm64 and others have only dup3 in package syscall).
func dupTo(oldfd, newfd int) error {
	return syscall.Dup3(oldfd, newfd, 0)
}
