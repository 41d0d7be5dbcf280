//go:build tools

// Package crd pins controller-gen and the API types it generates CRDs from.
package crd

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
