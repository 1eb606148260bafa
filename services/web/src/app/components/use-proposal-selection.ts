import { useCallback, useMemo, useState } from 'react'
import { prerequisites, withoutDependents, withPrerequisites } from '@/features/collab'
import type { ProposalData } from '@/lib/protocol'

/** The ticked changes of each open proposal (all ticked until someone unticks one). */
export interface ProposalSelection {
  proposals: ProposalData[]
  selectedOf: (p: ProposalData) => ReadonlySet<number>
  setSelected: (id: string, selected: Set<number>) => void
  /** Tick or untick one change, with what it needs / what needs it (a checkbox in the tree). */
  toggle: (proposalId: string, index: number, on: boolean) => void
  /** The change of the open proposal the pointer is on (the tree highlights its node). */
  hovered: { proposal: ProposalData; index: number } | null
  setHovered: (h: { proposal: ProposalData; index: number } | null) => void
}

export function useProposalSelection(proposals: ProposalData[]): ProposalSelection {
  const [chosen, setChosen] = useState<Record<string, Set<number>>>({})
  const [hovered, setHovered] = useState<ProposalSelection['hovered']>(null)
  const all = useMemo(() => new Map(proposals.map((p) => [p.id, new Set(p.deltas.map((_d, i) => i))])), [proposals])
  const selectedOf = useCallback((p: ProposalData) => chosen[p.id] ?? all.get(p.id) ?? new Set<number>(), [chosen, all])
  const setSelected = useCallback((id: string, selected: Set<number>) => setChosen((c) => ({ ...c, [id]: selected })), [])
  const toggle = useCallback(
    (proposalId: string, index: number, on: boolean) => {
      const p = proposals.find((q) => q.id === proposalId)
      if (!p) return
      const needs = prerequisites(p.deltas)
      const current = selectedOf(p)
      setSelected(proposalId, on ? withPrerequisites(current, index, needs) : withoutDependents(current, index, needs))
    },
    [proposals, selectedOf, setSelected],
  )
  return { proposals, selectedOf, setSelected, toggle, hovered, setHovered }
}
