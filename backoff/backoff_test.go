package backoff

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelayScheduleWithoutJitter(t *testing.T) {
	c := Default
	c.Jitter = 0
	want := []time.Duration{
		time.Second, 1600 * time.Millisecond, 2560 * time.Millisecond, 4096 * time.Millisecond,
	}
	for i, w := range want {
		require.InDelta(t, float64(w), float64(c.Delay(i, nil)), float64(time.Microsecond), "retry %d", i)
	}
	require.Equal(t, 120*time.Second, c.Delay(50, nil), "capped at Max")
	require.Equal(t, 120*time.Second, c.Delay(1<<30, nil), "huge retry counts neither overflow nor loop long")
	require.Equal(t, time.Second, c.Delay(-3, nil), "negative retries treated as the first")
}

func TestDelayJitterStaysInBand(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	c := Default
	var lo, hi bool
	for n := 0; n < 2000; n++ {
		d := c.Delay(0, rnd)
		require.GreaterOrEqual(t, d, 800*time.Millisecond)
		require.LessOrEqual(t, d, 1200*time.Millisecond)
		lo = lo || d < 900*time.Millisecond
		hi = hi || d > 1100*time.Millisecond
	}
	require.True(t, lo && hi, "jitter must actually spread the delays")
	require.Equal(t, 1200*time.Millisecond, c.Bound(0))
	require.Equal(t, 144*time.Second, c.Bound(99))
}

func TestValidate(t *testing.T) {
	require.NoError(t, Default.Validate())
	for name, c := range map[string]Config{
		"zero initial":    {Initial: 0, Multiplier: 1.6, Max: time.Second},
		"multiplier < 1":  {Initial: time.Second, Multiplier: 0.5, Max: time.Second},
		"jitter 1":        {Initial: time.Second, Multiplier: 2, Jitter: 1, Max: time.Second},
		"negative jitter": {Initial: time.Second, Multiplier: 2, Jitter: -0.1, Max: time.Second},
		"max < initial":   {Initial: 2 * time.Second, Multiplier: 2, Max: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, c.Validate(), ErrInvalid)
		})
	}
}
