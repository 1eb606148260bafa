import type { ReactNode } from 'react'
import { Link } from 'react-router'
import { ArrowLeftIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'

/** The frame of a settings page: "Back" to the dashboard, the page's title, links to its sibling pages. */
export function SettingsPage({ title, links, children }: { title: string; links?: ReactNode; children: ReactNode }) {
  return (
    <div className="mx-auto flex min-h-dvh max-w-4xl flex-col gap-4 p-4">
      <header className="flex items-center gap-2">
        <Button asChild variant="ghost" size="sm">
          <Link to="/">
            <ArrowLeftIcon aria-hidden />
            Back
          </Link>
        </Button>
        <h1 className="mr-auto text-lg font-semibold">{title}</h1>
        {links}
      </header>
      <main className="flex flex-col gap-4">{children}</main>
    </div>
  )
}
