import { Link } from 'react-router'
import { UserCogIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { sessionTitle, useSessions } from '@/features/sessions'
import { TokensSettings } from '@/features/tokens'
import { SettingsPage } from './settings-page'

/** "/settings/tokens": personal access tokens, with the user's sessions to limit a token to. */
export function SettingsRoute() {
  const sessions = useSessions()
  const choices = (sessions.data ?? []).map((s) => ({ id: s.session_id, title: sessionTitle(s) }))
  return (
    <SettingsPage
      title="Personal access tokens"
      links={
        <Button asChild variant="ghost" size="sm">
          <Link to="/settings/account">
            <UserCogIcon aria-hidden />
            Account
          </Link>
        </Button>
      }
    >
      <TokensSettings sessions={choices} />
    </SettingsPage>
  )
}
