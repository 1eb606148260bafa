import * as React from 'react'
import { cn } from '@/lib/utils'

/** The browser's own <select> (keyboard and screen-reader behaviour for free), styled like Input; an
 * opaque background, so its options stay legible in dark mode. */
export function NativeSelect({ className, ...props }: React.ComponentProps<'select'>) {
  return (
    <select
      data-slot="native-select"
      className={cn(
        'h-9 rounded-md border bg-background px-3 text-sm shadow-xs outline-none',
        'focus-visible:ring-[3px] focus-visible:ring-ring/50 disabled:cursor-not-allowed disabled:opacity-50',
        className,
      )}
      {...props}
    />
  )
}
