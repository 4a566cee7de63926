package fsm

import "sync"

// notifier delivers transitions to observers in order, one at a time, on a
// goroutine of its own that exists only while there is something to deliver:
// a slow observer delays other observers, never the machine, and ten
// thousand idle machines cost no delivery goroutines.
type notifier struct {
	mu      sync.Mutex
	queue   []Transition
	obs     []*observer
	running bool
	wg      sync.WaitGroup
}

type observer struct{ fn func(Transition) }

func (n *notifier) add(fn func(Transition)) (cancel func()) {
	o := &observer{fn: fn}
	n.mu.Lock()
	n.obs = append(n.obs[:len(n.obs):len(n.obs)], o) // copy on write: drain reads a snapshot
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i, x := range n.obs {
			if x == o {
				n.obs = append(n.obs[:i:i], n.obs[i+1:]...)
				return
			}
		}
	}
}

func (n *notifier) publish(t Transition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.obs) == 0 {
		return
	}
	n.queue = append(n.queue, t)
	if !n.running {
		n.running = true
		n.wg.Add(1)
		go n.drain()
	}
}

func (n *notifier) drain() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.queue = nil
			n.running = false
			n.mu.Unlock()
			return
		}
		t := n.queue[0]
		n.queue = n.queue[1:]
		obs := n.obs
		n.mu.Unlock()
		for _, o := range obs {
			o.fn(t)
		}
	}
}

// wait blocks until everything published so far has been delivered.
func (n *notifier) wait() { n.wg.Wait() }
