import { Link } from 'react-router'
import { ArrowLeftIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { sessionTitle, useSessions } from '@/features/sessions'
import { TokensSettings } from '@/features/tokens'

/** "/settings/tokens": personal access tokens, with the user's sessions to limit a token to. */
export function SettingsRoute() {
  const sessions = useSessions()
  const choices = (sessions.data ?? []).map((s) => ({ id: s.session_id, title: sessionTitle(s) }))
  return (
    <div className="mx-auto flex min-h-dvh max-w-4xl flex-col gap-4 p-4">
      <header className="flex items-center gap-2">
        <Button asChild variant="ghost" size="sm">
          <Link to="/">
            <ArrowLeftIcon aria-hidden />
            Back
          </Link>
        </Button>
        <h1 className="text-lg font-semibold">Personal access tokens</h1>
      </header>
      <TokensSettings sessions={choices} />
    </div>
  )
}
