//go:build race

package main

// raceScale stretches the tests' bounds under the race detector, which makes encoding/json ~10 times slower.
const raceScale = 3
