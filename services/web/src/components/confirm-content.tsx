import type { MouseEvent, ReactNode } from 'react'
import {
  AlertDialogAction,
  AlertDialogCancel,
  AlertDialogContent,
  AlertDialogDescription,
  AlertDialogFooter,
  AlertDialogHeader,
  AlertDialogTitle,
} from '@/components/ui/alert-dialog'

interface ConfirmContentProps {
  title: ReactNode
  description: ReactNode
  /** The destructive button's label, and its label while the request runs. */
  action: string
  pendingAction: string
  pending: boolean
  /** Call `e.preventDefault()` to keep the dialog open (both buttons disabled) until the server answers. */
  onConfirm: (e: MouseEvent) => void
  onCloseAutoFocus?: (e: Event) => void
}

/** The body of a "really do this?" alert dialog: Cancel (focused when it opens) and one destructive action. */
export function ConfirmContent({
  title,
  description,
  action,
  pendingAction,
  pending,
  onConfirm,
  onCloseAutoFocus,
}: ConfirmContentProps) {
  return (
    <AlertDialogContent onCloseAutoFocus={onCloseAutoFocus}>
      <AlertDialogHeader>
        <AlertDialogTitle>{title}</AlertDialogTitle>
        <AlertDialogDescription>{description}</AlertDialogDescription>
      </AlertDialogHeader>
      <AlertDialogFooter>
        <AlertDialogCancel disabled={pending}>Cancel</AlertDialogCancel>
        <AlertDialogAction variant="destructive" disabled={pending} onClick={onConfirm}>
          {pending ? pendingAction : action}
        </AlertDialogAction>
      </AlertDialogFooter>
    </AlertDialogContent>
  )
}
