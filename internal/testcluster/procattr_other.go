//go:build !linux

package testcluster

import "syscall"

// procAttr puts a server in its own process group (stopped as a group).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
