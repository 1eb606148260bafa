import { useId, useState, type FormEvent } from 'react'
import { PlusIcon, XIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from '@/components/ui/dialog'
import { Input } from '@/components/ui/input'
import type { Delta, TreeNode } from '@/lib/protocol'
import { propRows, propsDelta, type PropRow } from '../model/props-edit'

export interface PropsDialogProps {
  node: TreeNode
  path: string
  /** Sends the one delta (one undo step); returns false when it was refused. */
  onSave: (delta: Delta) => boolean
  onClose: () => void
}

/**
 * The node details panel: its props, added, edited and removed by hand, saved as one change. A dialog, so
 * focus goes back to what opened it when it closes.
 */
export function PropsDialog({ node, path, onSave, onClose }: PropsDialogProps) {
  const [rows, setRows] = useState<PropRow[]>(() => propRows(node.props))
  const [problem, setProblem] = useState<string | null>(null)
  const problemId = useId()
  const set = (i: number, patch: Partial<PropRow>) => setRows((r) => r.map((row, j) => (j === i ? { ...row, ...patch } : row)))

  function submit(e: FormEvent) {
    e.preventDefault()
    const result = propsDelta(path, node.props, rows)
    if (result === null) return onClose()
    if ('problem' in result) return setProblem(result.problem)
    if (onSave(result.delta)) onClose()
  }

  return (
    <Dialog open onOpenChange={(open) => !open && onClose()}>
      <DialogContent>
        <form onSubmit={submit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle>Props of “{node.value}”</DialogTitle>
            <DialogDescription>Text, numbers, or true/false. Saved as one change (one undo).</DialogDescription>
          </DialogHeader>
          <ul className="grid gap-2">
            {rows.map((row, i) => (
              <li key={i} className="flex items-center gap-2">
                <Input
                  aria-label={`Name of prop ${i + 1}`}
                  value={row.key}
                  maxLength={64}
                  onChange={(e) => set(i, { key: e.target.value })}
                  className="h-8 w-36"
                />
                <Input
                  aria-label={`Value of ${row.key || `prop ${i + 1}`}`}
                  value={row.value}
                  maxLength={500}
                  onChange={(e) => set(i, { value: e.target.value })}
                  className="h-8 flex-1"
                />
                <Button
                  type="button"
                  size="icon-sm"
                  variant="ghost"
                  aria-label={`Remove ${row.key || `prop ${i + 1}`}`}
                  onClick={() => setRows((r) => r.filter((_, j) => j !== i))}
                >
                  <XIcon aria-hidden />
                </Button>
              </li>
            ))}
          </ul>
          <Button type="button" size="sm" variant="outline" className="justify-self-start" onClick={() => setRows((r) => [...r, { key: '', value: '' }])}>
            <PlusIcon aria-hidden />
            Add prop
          </Button>
          {problem && (
            <p id={problemId} role="alert" className="text-sm text-destructive">
              {problem}
            </p>
          )}
          <DialogFooter>
            <Button type="button" variant="outline" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit">Save</Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  )
}
