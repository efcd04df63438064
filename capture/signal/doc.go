// Package signal is the capture trigger that fires on a process signal
// (SIGUSR1 for the agent), so scripts and cron can ask for a frame.
package signal
