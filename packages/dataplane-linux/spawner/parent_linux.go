package main

import (
	"fmt"
	"os"
	"syscall"
)

// dieWithParent asks the kernel for SIGKILL when the parent exits, and exits if the parent (pid
// given by it) is already gone, since the request would then come too late to be noticed.
// Closing stdin would end the loop too, but only once every holder of the pipe's other end is
// gone; the signal does not wait for that.
func dieWithParent(parent int) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %v", errno)
	}
	if parent != 0 && os.Getppid() != parent {
		return fmt.Errorf("parent %d is gone", parent)
	}
	return nil
}
