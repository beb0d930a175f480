// /dashboard – the signed-in user's WhatsApp connection
import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { getCurrentUser } from "@/lib/auth/current-user";
import { signOut } from "../(auth)/actions";
import { SignOutEverywhere } from "./sign-out-everywhere";
import { WhatsAppPanel } from "./whatsapp-panel";

export const metadata: Metadata = { title: "Your WhatsApp · wavault" };

export default async function DashboardPage() {
  const user = await getCurrentUser();
  if (user.state === "signed_out") redirect("/login");
  return (
    <main className="page">
      <header className="page-header">
        <h1>Your WhatsApp</h1>
        {/* Signing out only clears the cookie: it needs no PocketBase, so it is there while PocketBase is unreachable too. */}
        <div className="signed-in">
          {user.state === "signed_in" && <span className="muted">{user.email}</span>}
          <form action={signOut}>
            <button type="submit" className="button">
              Sign out
            </button>
          </form>
          {user.state === "signed_in" && <SignOutEverywhere />}
        </div>
      </header>
      {user.state === "signed_in" ? (
        <WhatsAppPanel />
      ) : (
        <p role="alert" className="notice notice-error">
          The session database (PocketBase) is unreachable right now, so we cannot check who you are. Try again in a minute.
        </p>
      )}
    </main>
  );
}
