package cli

// AddTestCommand adds a command to the scripts, for the external test
// package (which may import package cluster).
func AddTestCommand(name string, f func()) { testCommands[name] = f }
