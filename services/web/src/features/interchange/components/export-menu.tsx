import { toast } from 'sonner'
import { DownloadIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuTrigger,
} from '@/components/ui/dropdown-menu'
import { ApiError } from '@/lib/api-client'
import { exportSession } from '../api/interchange'
import { FORMATS, type OutlineFormat } from '../model/files'

const MEDIA: Record<OutlineFormat, string> = {
  json: 'application/json',
  markdown: 'text/markdown',
  opml: 'text/x-opml',
}

function download(text: string, name: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  URL.revokeObjectURL(url)
}

function fileName(title: string, extension: string): string {
  const slug = title.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 60)
  return `${slug || 'canopy-tree'}.${extension}`
}

/** "Export" with the three formats: downloads the session's tree as a file. */
export function ExportMenu({ sessionId, title }: { sessionId: string | null; title: string }) {
  const run = async (format: OutlineFormat, extension: string) => {
    if (!sessionId) return
    try {
      download(await exportSession(sessionId, format), fileName(title, extension), MEDIA[format])
    } catch (err) {
      toast.error(err instanceof ApiError ? err.message : 'Export failed')
    }
  }
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" size="sm" disabled={!sessionId}>
          <DownloadIcon aria-hidden />
          <span className="sr-only sm:not-sr-only">Export</span>
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="end">
        {FORMATS.map((f) => (
          <DropdownMenuItem key={f.format} onSelect={() => void run(f.format, f.extension)}>
            {f.label} (.{f.extension})
          </DropdownMenuItem>
        ))}
      </DropdownMenuContent>
    </DropdownMenu>
  )
}
