//go:build tools

// Package kube only exists to pin the control-plane commands that `make kube-bins`
// builds: go build k8s.io/kubernetes/cmd/kube-apiserver (and kube-controller-manager)
// inside this module.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)
