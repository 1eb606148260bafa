import { Link } from 'react-router'
import { toast } from 'sonner'
import { KeyRoundIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { AccountSettings } from '@/features/account'
import { SettingsPage } from './settings-page'

const SIGNED_OUT = {
  password: 'Password changed. Log in with your new password.',
  everywhere: 'Signed out of all devices.',
} as const

/** "/settings/account": change the password, sign out of all devices (both log this tab out too). */
export function AccountRoute() {
  return (
    <SettingsPage
      title="Account"
      links={
        <Button asChild variant="ghost" size="sm">
          <Link to="/settings/tokens">
            <KeyRoundIcon aria-hidden />
            Access tokens
          </Link>
        </Button>
      }
    >
      <AccountSettings onSignedOut={(what) => toast.success(SIGNED_OUT[what], { duration: 10_000 })} />
    </SettingsPage>
  )
}
