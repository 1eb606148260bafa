import { useRef, useState, type DragEvent } from 'react'
import { toast } from 'sonner'
import { UploadIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
  DialogTrigger,
} from '@/components/ui/dialog'
import { Label } from '@/components/ui/label'
import { NativeSelect } from '@/components/ui/native-select'
import { ApiError } from '@/lib/api-client'
import { cn } from '@/lib/utils'
import { useImport } from '../api/interchange'
import { countNodes, formatOf, FORMATS, type OutlineFormat } from '../model/files'

const ONE_MB = 1_000_000

export interface ImportDialogProps {
  /** The open session: the import can go under its root. */
  sessionId: string | null
  /** Called with the session that received the import (a new one, or the open one). */
  onImported: (sessionId: string) => void
}

interface Picked {
  name: string
  content: string
}

/** Import a JSON, Markdown or OPML file (picked or dropped) as a new session or into the open one. */
export function ImportDialog({ sessionId, onImported }: ImportDialogProps) {
  const [open, setOpen] = useState(false)
  const [file, setFile] = useState<Picked | null>(null)
  const [format, setFormat] = useState<OutlineFormat>('markdown')
  const [target, setTarget] = useState<'new' | 'here'>('new')
  const [dragging, setDragging] = useState(false)
  /** Why the file was refused (the server's words, with the line), shown in the dialog beside the file. */
  const [error, setError] = useState<string | null>(null)
  const fileInput = useRef<HTMLInputElement>(null)
  const importer = useImport()
  const count = file ? countNodes(format, file.content) : null

  const take = async (picked: File | undefined) => {
    if (!picked) return
    if (picked.size > ONE_MB) {
      setError('That file is over 1 MB, the import limit.')
      return
    }
    setError(null)
    setFile({ name: picked.name, content: await picked.text() })
    setFormat(formatOf(picked.name) ?? format)
  }

  const onDrop = (e: DragEvent) => {
    e.preventDefault()
    setDragging(false)
    void take(e.dataTransfer.files[0])
  }

  const submit = () => {
    if (!file) return
    importer.mutate(
      {
        format,
        content: file.content,
        sessionId: target === 'here' ? sessionId : null,
        title: file.name.replace(/\.[^.]+$/, ''),
      },
      {
        onSuccess: (done) => {
          toast.success(
            target !== 'here'
              ? 'Imported as a new session'
              : done.proposed
                ? `Proposed ${done.added} nodes for review (review mode is on)`
                : `Imported ${done.added} nodes`,
          )
          setOpen(false)
          setFile(null)
          onImported(done.sessionId)
        },
        onError: (err) => {
          setError(err instanceof ApiError ? err.message : 'Import failed: the server could not be reached.')
          // The Import button was disabled while waiting (the focus went with it): back to choosing a file.
          fileInput.current?.focus()
        },
      },
    )
  }

  return (
    <Dialog
      open={open}
      onOpenChange={(o) => {
        setOpen(o)
        if (!o) {
          setFile(null)
          setError(null)
        }
      }}
    >
      <DialogTrigger asChild>
        <Button variant="ghost" size="sm">
          <UploadIcon aria-hidden />
          <span className="sr-only sm:not-sr-only">Import</span>
        </Button>
      </DialogTrigger>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>Import a tree</DialogTitle>
          <DialogDescription>A JSON export, a Markdown bullet outline or an OPML file, up to 1 MB.</DialogDescription>
        </DialogHeader>
        <div
          data-testid="import-drop-zone"
          onDragOver={(e) => {
            e.preventDefault()
            setDragging(true)
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          className={cn(
            'flex flex-col items-center gap-2 rounded-md border border-dashed p-4 text-center text-sm',
            dragging && 'border-primary bg-accent',
          )}
        >
          <p>{file ? file.name : 'Drop a file here, or choose one'}</p>
          <Label htmlFor="import-file" className="sr-only">
            File
          </Label>
          <input
            id="import-file"
            ref={fileInput}
            type="file"
            accept=".json,.md,.markdown,.txt,.opml,.xml"
            className="max-w-full text-sm"
            onChange={(e) => void take(e.target.files?.[0])}
          />
        </div>
        <div className="grid gap-3 sm:grid-cols-2">
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="import-format">Format</Label>
            <NativeSelect
              id="import-format"
              value={format}
              onChange={(e) => {
                setFormat(e.target.value as OutlineFormat)
                setError(null)
              }}
            >
              {FORMATS.map((f) => (
                <option key={f.format} value={f.format}>
                  {f.label}
                </option>
              ))}
            </NativeSelect>
          </div>
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="import-target">Import into</Label>
            <NativeSelect
              id="import-target"
              value={target}
              onChange={(e) => setTarget(e.target.value as 'new' | 'here')}
            >
              <option value="new">A new session</option>
              {sessionId && <option value="here">This session (top level)</option>}
            </NativeSelect>
          </div>
        </div>
        <p role="status" className="text-sm text-muted-foreground">
          {!file
            ? 'No file chosen.'
            : count === null
              ? `This does not look like ${FORMATS.find((f) => f.format === format)?.label}.`
              : `${count} ${count === 1 ? 'node' : 'nodes'} to import.`}
        </p>
        {error && (
          <p role="alert" className="text-sm text-destructive">
            {error}
          </p>
        )}
        <DialogFooter>
          <Button onClick={submit} disabled={!file || importer.isPending}>
            Import
          </Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  )
}
