package rollout

import "fmt"

// Member is one host to roll out to; Group is its haltfleet_wave_group ("" for none).
// Members of one group are redundant with each other and never share a wave.
type Member struct {
	Name, Group string
}

// Wave is one step of the rollout: indexes into the members, in inventory order.
type Wave []int

// Plan cuts members into waves sized by steps (see Sizes, computed over all members). A
// member whose group already has a host in the wave moves to a later wave, its place
// taken by the next member that fits; the last step repeats for waves added that way.
// Notes explain every such move, so the operator sees why the waves differ from serial.
func Plan(members []Member, steps []Step) (waves []Wave, notes []string, err error) {
	if len(steps) == 0 {
		return nil, nil, fmt.Errorf("rollout: no serial steps")
	}
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.Name] {
			return nil, nil, fmt.Errorf("rollout: host %s listed twice", m.Name)
		}
		seen[m.Name] = true
	}
	sizes := Sizes(steps, len(members))
	pending := make([]int, len(members))
	for i := range pending {
		pending[i] = i
	}
	type deferral struct{ wave, blocker int }
	deferred := map[int]deferral{}
	for w := 0; len(pending) > 0; w++ {
		size := sizes[min(w, len(sizes)-1)]
		if w >= len(sizes) {
			size = steps[len(steps)-1].size(len(members))
		}
		var wave Wave
		groups := map[string]bool{}
		var rest []int
		for _, i := range pending {
			g := members[i].Group
			switch {
			case len(wave) >= size:
				rest = append(rest, i)
			case g != "" && groups[g]:
				rest = append(rest, i)
				if _, ok := deferred[i]; !ok {
					deferred[i] = deferral{w, firstOf(members, wave, g)}
				}
			default:
				wave = append(wave, i)
				if g != "" {
					groups[g] = true
				}
			}
		}
		// The first pending member always fits an empty wave, so every wave has a host.
		waves = append(waves, wave)
		pending = rest
	}
	for w, wave := range waves {
		for _, i := range wave {
			if d, ok := deferred[i]; ok {
				notes = append(notes, fmt.Sprintf("%s goes in wave %d, not %d: wave group %q has %s in wave %d",
					members[i].Name, w+1, d.wave+1, members[i].Group, members[d.blocker].Name, d.wave+1))
			}
		}
	}
	if len(waves) > len(sizes) {
		notes = append(notes, fmt.Sprintf("wave groups need %d waves where serial gives %d", len(waves), len(sizes)))
	}
	return waves, notes, nil
}

func firstOf(members []Member, wave Wave, group string) int {
	for _, i := range wave {
		if members[i].Group == group {
			return i
		}
	}
	return wave[0]
}
