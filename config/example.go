package config

import _ "embed"

// Example is the commented example configuration shipped with the agent
// (`framepush config example`).
//
//go:embed example.yaml
var Example string
