package testcluster

import "syscall"

// procAttr puts a server in its own process group (stopped as a group) and
// has the kernel kill it when the process that started it dies, so that a
// killed parent leaves no etcd or kube-apiserver behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
