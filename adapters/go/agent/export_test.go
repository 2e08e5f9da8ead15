package agent

// ProcessCPU is the process's CPU time, for the tests of the health report.
var ProcessCPU = processCPU
