import { Link } from 'react-router'
import { toast } from 'sonner'
import { ArrowLeftIcon, KeyRoundIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { AccountSettings } from '@/features/account'

const SIGNED_OUT = {
  password: 'Password changed. Log in with your new password.',
  everywhere: 'Signed out of all devices.',
} as const

/** "/settings/account": change the password, sign out of all devices (both log this tab out too). */
export function AccountRoute() {
  return (
    <div className="mx-auto flex min-h-dvh max-w-4xl flex-col gap-4 p-4">
      <header className="flex items-center gap-2">
        <Button asChild variant="ghost" size="sm">
          <Link to="/">
            <ArrowLeftIcon aria-hidden />
            Back
          </Link>
        </Button>
        <h1 className="mr-auto text-lg font-semibold">Account</h1>
        <Button asChild variant="ghost" size="sm">
          <Link to="/settings/tokens">
            <KeyRoundIcon aria-hidden />
            Access tokens
          </Link>
        </Button>
      </header>
      <AccountSettings
        onSignedOut={(what) => toast.success(SIGNED_OUT[what], { duration: 10_000 })}
      />
    </div>
  )
}
