// Package simwatch holds the files the watcher embeds: the example rules the
// demo runs with.
package simwatch

import _ "embed"

// ExampleRules is rules.example.yaml.
//
//go:embed rules.example.yaml
var ExampleRules []byte
