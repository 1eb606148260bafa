export { AccountSettings, type AccountSettingsProps } from './components/account-settings'
export { changePassword, logoutAll, useChangePassword, useLogoutAll, type PasswordChange } from './api/account'
