//go:build race

package modelcheck_test

const defaultSeeds = 300
